"""Python's own allocations while something runs: a bound on memory that is not a timing."""

from __future__ import annotations

import tracemalloc
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


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
