"""Reporting callbacks that hold the event loop (pachd --slow-callback SECONDS).

Every callback the loop runs (a task's step, a gRPC completion, a timer) is
timed; one that runs at least the threshold is logged at WARNING with its
wall time and the CPU time the loop's thread spent in it. CPU time is what
the code itself held the loop for; wall time also counts waiting for a busy
machine's cores (and blocking calls, which never belong on the loop).
Diagnostics only: off by default.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

logger = logging.getLogger(__name__)


def watch(threshold: float) -> None:
    """Times every callback of every event loop in this process from now on."""
    original = asyncio.events.Handle._run

    def timed(handle: asyncio.Handle) -> Any:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return original(handle)
        finally:
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            if wall >= threshold:
                logger.warning("a callback held the event loop for %.3f s (%.3f s of CPU): %r",
                               wall, cpu, handle)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
