"""Writes in flight: what garbage collection must spare.

A put-file stream stores its blocks before any commit refers to them, and
finishing a commit stores its tree's nodes before the commit record names
them. While such writes run, each replica keeps one key (keys.upload) saying
when the oldest of them began; garbage collection removes no object written
after the earliest such time. Because an older time is always safe, the key
is written only when the replica's first write starts, removed when its last
one ends, and otherwise moved forward at most once a minute. A metadata
store only one process uses (SQLite) needs no key: that process's own
collection asks it directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable

from pachd.pfs import keys
from pachd.storage.kv import KV

logger = logging.getLogger(__name__)

REFRESH = 60.0
"""Seconds before a replica moves its marker forward while writes keep overlapping."""
STALE = 24 * 3600.0
"""A marker this old belongs to a replica that died without returning; it is ignored."""


class Uploads:
    def __init__(self, *, kv: KV, replica: str = "", shared: bool = True, now: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._shared = shared  # other processes may collect garbage: keep the marker key
        self._key = keys.upload(replica or uuid.uuid4().hex[:12])
        self._now = now
        self._running: dict[int, float] = {}  # write number -> start time
        self._count = 0
        self._marked: float | None = None  # what the marker key says, if it exists
        self._lock = asyncio.Lock()

    async def sweep(self) -> None:
        """Drops this replica's marker left by a crash (its writes died with it)."""
        await self._kv.delete(self._key)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Marks a write as in flight for as long as the block lasts."""
        self._count += 1
        number = self._count
        self._running[number] = self._now()
        try:
            if self._shared:
                async with self._lock:
                    if self._marked is None:
                        await self._mark(self._running[number])
            yield
        finally:
            del self._running[number]
            if self._shared:
                async with self._lock:
                    await self._settle()

    async def _settle(self) -> None:
        if not self._running:
            if self._marked is not None:
                await self._kv.delete(self._key)
                self._marked = None
        elif self._marked is not None and self._now() - self._marked > REFRESH:
            await self._mark(min(self._running.values()))

    async def _mark(self, started: float) -> None:
        await self._kv.put(self._key, json.dumps({"started": started}).encode())
        self._marked = started

    async def oldest(self) -> float | None:
        """When the oldest write in flight on any replica began (None: none runs)."""
        times = list(self._running.values())
        for kv in (await self._kv.range(keys.UPLOADS)).kvs if self._shared else ():
            started = float(json.loads(kv.value)["started"])
            if self._now() - started > STALE:
                logger.warning("ignoring %s: a write marker from %.0f s ago (a replica gone for good?)",
                               kv.key, self._now() - started)
                continue
            times.append(started)
        return min(times, default=None)
