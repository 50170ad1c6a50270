"""Python's own allocations while something runs: a bound on memory that is not a timing."""

from __future__ import annotations

import tracemalloc
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def process_memory(pid: int, field: str) -> int:
    """A memory figure of the running process `pid`, in bytes, from /proc/<pid>/status: "VmHWM"
    (its peak resident set), "RssAnon" (its anonymous resident memory: heaps, buffers)..."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def traced_peak(work: Awaitable[T]) -> tuple[T, int]:
    """What `work` returned, and the most bytes it held allocated at once (every thread's
    allocations through Python's allocator, above what was allocated when it began)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = await work
        return result, tracemalloc.get_traced_memory()[1] - base
    finally:
        if started:
            tracemalloc.stop()
