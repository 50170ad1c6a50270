"""The job shim's bytecode, written ahead for the local executor's pods.

A local pod runs as an unprivileged user over a read-only view of the system: it
cannot write the bytecode of the modules it imports, so where that bytecode is
missing or stale (a fresh checkout, an edited module) every pod compiles them
again, a quarter of a cold start's CPU. pachd, which may write there, brings it
up to date once at start-up; what is current is left as it is. Installed trees
(the images' virtualenvs) have theirs from pip already.
"""

from __future__ import annotations

import compileall
import importlib.util
import logging

logger = logging.getLogger(__name__)

SHIM_PACKAGES = ("shim", "pachctl", "pachyderm_client")
"""The packages of our code the job shim imports from (the rest is installed, with its bytecode)."""


def write_ahead(packages: tuple[str, ...] | None = None) -> bool:
    """Brings the bytecode of `packages` (SHIM_PACKAGES) up to date where it may be written; False
    where some could not be (a read-only tree: pods then compile those modules as they import them)."""
    done = True
    for package in SHIM_PACKAGES if packages is None else packages:
        spec = importlib.util.find_spec(package)
        for folder in (spec.submodule_search_locations or []) if spec is not None else []:
            done = bool(compileall.compile_dir(folder, quiet=2, workers=1)) and done
    if not done:
        logger.info("could not write the job shim's bytecode everywhere: pods compile what is missing")
    return done
