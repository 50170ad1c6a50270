"""Waiting on the metadata store: re-check a condition whenever keys change.

Used for everything that blocks (finish waiting for a parent, list-commit
with block, flush-commit, inspect-job with block_state): no polling, no
sleeps, and no change can slip between a check and the watch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from pachd.storage.kv import KV, Event

T = TypeVar("T")


class Changes:
    """Every change under some prefixes from a revision on; see watching()."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Event | BaseException] = asyncio.Queue()

    async def next(self) -> Event:
        """The next change; re-raises the error if a watch failed."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def drain(self) -> list[Event]:
        """The changes queued now (callers that re-read state often need only a wake-up)."""
        events = []
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if isinstance(item, BaseException):
                raise item
            events.append(item)
        return events


@contextlib.asynccontextmanager
async def watching(kv: KV, prefixes: Sequence[str], start_revision: int) -> AsyncIterator[Changes]:
    """Changes under `prefixes` from `start_revision`, while the block runs."""
    changes = Changes()

    async def pump(prefix: str) -> None:
        try:
            async for event in kv.watch(prefix, start_revision=start_revision):
                changes._queue.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            changes._queue.put_nowait(err)

    tasks = [asyncio.create_task(pump(prefix)) for prefix in prefixes]
    try:
        yield changes
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for(kv: KV, prefixes: Sequence[str], check: Callable[[], Awaitable[T | None]]) -> T:
    """Runs `check` until it returns something other than None; returns that.

    `check` runs again after any change under `prefixes`. Watch errors
    (StorageError, Compacted) propagate to the caller.
    """
    revision = await kv.revision()
    async with watching(kv, prefixes, revision + 1) as changes:
        while True:
            result = await check()
            if result is not None:
                return result
            await changes.next()
            changes.drain()
