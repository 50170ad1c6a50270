"""Modules loaded on first use: a command pays only for the modules it touches.

`pachctl version` needs no PPS messages and `pachctl list-repo` no PPS or
internal ones, yet every client mixin names its service's modules. Each
names them through lazy_module(), which registers the module at once (so
`import` elsewhere finds the same object) and runs it on its first attribute,
or when another module imports it (a generated module imports those it needs:
their descriptors must be in the pool first).
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType


def lazy_module(name: str) -> ModuleType:
    """The module `name`, run when an attribute of it is first read or another module imports
    it (at once if already loaded)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
