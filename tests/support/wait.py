"""Waiting for a condition with a deadline: the one way tests wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

INTERVAL = 0.05


def wait_until(predicate: Callable[[], object], *, timeout: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(INTERVAL)


async def async_wait_until(predicate: Callable[[], Awaitable[object]], *, timeout: float = 30.0,
                           what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(INTERVAL)
