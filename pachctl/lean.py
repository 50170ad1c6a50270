"""Imported first by pachctl and the job shim: modules grpc and protobuf import but
these programs never run are registered unrun (defer_import), so a command does not
pay for them.

grpc's core imports asyncio (with ssl, subprocess, ...) and grpc imports grpc.aio,
both for asyncio channels and servers; protobuf's descriptor pool imports
python_message (the pure-Python runtime, unused under upb, which brings
text_format with it). Standard modules imported on the way and used only by
functions these programs rarely call go too: inspect, pkgutil and socket (grpc's core),
traceback (logging: formatting an exception), calendar (protobuf's Timestamp
conversions), ipaddress (urllib.parse, for bracketed hosts). A command that does read them (a FUSE mount runs an event
loop) runs them then, as if imported at the start: `import`, `from ... import`
and every attribute work as ever; only dir() and vars() of one not yet run show
its bookkeeping alone. Only our own programs do this: the client library, imported
by someone else's program, leaves the import system as it is.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

from google.protobuf.internal import api_implementation

_RUNNING = threading.RLock()
"""Held while a deferred module runs: another thread that reads one of its attributes meanwhile waits."""
_running: set[str] = set()


class _Deferred(ModuleType):
    """A module whose code has not run yet: it runs when an attribute it lacks is first read.

    Its import bookkeeping (__spec__, __name__, __path__, ...) is there from the start, so
    `import` finds it loaded and does not run it."""

    def __getattr__(self, attr: str) -> Any:
        name = self.__name__
        with _RUNNING:
            if isinstance(self, _Deferred) and name not in _running:  # not run, nor running in this thread
                spec = self.__spec__
                assert spec is not None and spec.loader is not None
                _running.add(name)
                try:
                    spec.loader.exec_module(self)
                except BaseException:
                    sys.modules.pop(name, None)  # as a failed import leaves it
                    raise
                finally:
                    _running.discard(name)
                    self.__class__ = ModuleType  # type: ignore[assignment]  # now a module like any
        return ModuleType.__getattribute__(self, attr)




def defer_import(name: str) -> None:
    """Registers the module `name` so that it runs only if an attribute of it is ever read,
    without importing its package: an import of it (its package's own included) finds it
    loaded and leaves it unrun. Nothing happens if it is already loaded, or cannot be found."""
    if name in sys.modules:
        return
    package, _, _ = name.rpartition(".")
    search: list[str] | None = None  # a top-level module: sys.path
    if package:
        parent = sys.modules.get(package)
        parent_spec = parent.__spec__ if parent is not None else importlib.util.find_spec(package)
        if parent_spec is None or not parent_spec.submodule_search_locations:
            return
        search = list(parent_spec.submodule_search_locations)
    spec = importlib.machinery.PathFinder.find_spec(name, search)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    sys.modules[name] = module
    if package in sys.modules:  # bound on its package, as import binds it
        setattr(sys.modules[package], name.rpartition(".")[2], module)


defer_import("asyncio")
defer_import("grpc.aio")
for _name in ("inspect", "pkgutil", "socket", "traceback", "calendar", "ipaddress"):
    defer_import(_name)
if api_implementation.Type() == "upb":
    defer_import("google.protobuf.internal.python_message")
