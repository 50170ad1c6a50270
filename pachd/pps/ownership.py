"""Which pachd replica drives which pipeline (and which hand-made job).

Every replica holds one lease in the metadata store and keeps it alive. A
pipeline's (or job's) owner key is written with that lease, in a transaction
that requires the key to be absent, so exactly one replica wins it. When a
replica dies its lease expires, its owner keys vanish with it, and another
replica claims them within the lease time. A replica that cannot renew its
lease stops driving everything (`lost` is set) before anyone else may start.

A replica restarted on the same data dir keeps its identity, so it takes its
own pipelines back at once instead of waiting for its old lease to expire.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path

from pachd.errors import StorageError
from pachd.pps import keys
from pachd.storage.kv import KV, Compare, Delete, Lease, Put

logger = logging.getLogger(__name__)


def replica_identity(data_dir: Path) -> str:
    """A stable name for this replica, kept in its data dir."""
    path = data_dir / "replica-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        identity = uuid.uuid4().hex[:12]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(identity)
        return identity


class Ownership:
    def __init__(self, *, kv: KV, replica: str, ttl: float) -> None:
        self._kv = kv
        self.replica = replica
        self.ttl = ttl
        self._lease: Lease | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self.lost = asyncio.Event()

    async def start(self) -> None:
        self._lease = await self._kv.grant_lease(self.ttl)
        self._keepalive = asyncio.create_task(self._renew(), name="lease-keepalive")

    async def _renew(self) -> None:
        assert self._lease is not None
        while True:
            await asyncio.sleep(self.ttl / 3)
            try:
                await self._lease.refresh()
            except StorageError as err:
                logger.error("replica %s lost its lease (%s); it stops driving pipelines", self.replica, err)
                self.lost.set()
                return

    async def claim(self, owned: str) -> bool:
        """Takes `owned` (a pipeline name, or "job:<id>") if no live replica has it."""
        assert self._lease is not None
        key = keys.owner(owned)
        current = await self._kv.get(key)
        if current is not None and current.value.decode() != self.replica:
            return False
        revision = current.mod_revision if current is not None else 0
        put = Put(key, self.replica.encode(), lease=self._lease.id)
        won = (await self._kv.txn([Compare(key, revision)], [put])).succeeded
        if won:
            logger.info("replica %s drives %s", self.replica, owned)
        return won

    async def owns(self, owned: str) -> bool:
        current = await self._kv.get(keys.owner(owned))
        return current is not None and current.value.decode() == self.replica

    async def release(self, owned: str) -> None:
        key = keys.owner(owned)
        current = await self._kv.get(key)
        if current is not None and current.value.decode() == self.replica:
            await self._kv.txn([Compare(key, current.mod_revision)], [Delete(key)])

    async def close(self) -> None:
        """Gives everything up at once (a clean shutdown hands pipelines over without waiting)."""
        if self._keepalive is not None:
            self._keepalive.cancel()
            await asyncio.gather(self._keepalive, return_exceptions=True)
        if self._lease is not None:
            try:
                await self._lease.revoke()
            except StorageError:
                pass
