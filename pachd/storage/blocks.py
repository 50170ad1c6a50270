"""The block store contract: immutable named objects (blocks and tree nodes).

Two backends implement it: `pachd.storage.localdisk.LocalBlockStore` (files
under the data dir) and `pachd.storage.gcs.GcsBlockStore` (Google Cloud
Storage, or its emulator via STORAGE_EMULATOR_HOST). One conformance suite
(tests/storage/test_blocks.py) runs against both.

Names are "/"-separated ASCII strings such as "blocks/<sha512 hex>"; callers
choose them, backends map them to files or objects. An object is written once
and never changed, so readers may cache it forever.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pachd.errors import DiskFull, StorageError
from pachyderm_client._glibc import start_writeback

RESERVE = 32 * 1024 * 1024
"""Bytes a local disk keeps free for metadata: block writes that would eat into them are refused."""

PUTS_AT_ONCE = 16
"""A durable batch's puts of put_all in flight at once: each waits for a round trip to the bucket."""


def check_room(folder: Path, size: int, reserve: int = RESERVE) -> None:
    """Raises DiskFull unless `size` more bytes fit in `folder`'s filesystem, leaving `reserve` free."""
    st = os.statvfs(folder)
    if st.f_bavail * st.f_frsize - size < reserve:
        raise DiskFull(f"no space left on device under {folder} (keeping {reserve >> 20} MiB free for metadata)")


def disk_error(err: OSError, what: str) -> StorageError:
    """The StorageError for a failed local disk operation: DiskFull when the disk is full."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{what}: no space left on device ({err.filename or err})")
    return StorageError(f"{what} failed: {err}")


def empty_folder(folder: Path) -> int:
    """Removes every file directly in `folder` (what interrupted writes left there); returns how many."""
    gone = 0
    for leftover in folder.iterdir() if folder.is_dir() else ():
        leftover.unlink(missing_ok=True)
        gone += 1
    return gone


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What the store knows about one object."""

    name: str
    size: int
    created: datetime  # when written, or last renewed (see BlockStore.renew)


Parts = Sequence[bytes | memoryview]
"""An object's bytes as pieces, in order (so no one has to join them into one buffer)."""

WRITTEN_AT_ONCE = 512
"""Parts handed to one os.writev (below the system's IOV_MAX, 1024 on Linux)."""


def write_new(path: Path) -> int:
    """A descriptor writing the new file `path` (which must not exist)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)


def write_parts(fd: int, parts: Parts) -> None:
    """Writes the parts' bytes at the file's position, in order: through the page cache, where a
    get-file right after the put finds them (the writer syncs the file before naming it), and
    starts their writeback at once: the disk writes a put's first blocks while later ones are
    hashed, and the sync before a put's commit finds little left (1 GiB put: 2.48 -> 2.01 s)."""
    views = [memoryview(part) for part in parts if len(part)]
    at = 0
    while at < len(views):
        done = os.writev(fd, views[at : at + WRITTEN_AT_ONCE])
        while done and done >= len(views[at]):
            done -= len(views[at])
            at += 1
        if done:  # a short write cut through a part: the rest of it goes next
            views[at] = views[at][done:]
    start_writeback(fd)


class WriteBatch(Protocol):
    """Objects written together and made durable together, once, by commit().

    What a batch writes is neither visible under its name nor durable until
    commit() returns; then all of it is both. A writer that is about to
    commit metadata naming these objects calls commit() first. discard()
    (or a crash) leaves nothing behind that sweep() does not clear.
    """

    async def reuse(self, name: str) -> bool:
        """Renews the object if it exists (see BlockStore.renew), and commit() then covers its
        durability too; False if it does not exist (write it)."""

    async def put(self, name: str, parts: Parts) -> None:
        """Writes the object whose bytes are `parts`, in order."""

    async def put_from(self, name: str, source: Path) -> None:
        """Writes the object from the local file `source` (from temporary()), which is consumed."""

    async def put_all(self, objects: Mapping[str, bytes]) -> None:
        """Writes small objects already in memory (a tree's nodes), as many puts would, in as few
        steps as the store allows."""

    async def commit(self) -> None:
        """Makes every object of the batch durable under its name before returning."""

    async def discard(self) -> None:
        """Removes what the batch wrote and did not commit."""


class DurableBatch:
    """The WriteBatch of a store whose writes are durable when they return (buckets):
    each put is a put, and commit() has nothing left to do."""

    def __init__(self, store: BlockStore) -> None:
        self._store = store

    async def reuse(self, name: str) -> bool:
        return await self._store.renew(name)

    async def put(self, name: str, parts: Parts) -> None:
        await self._store.put(name, parts[0] if len(parts) == 1 and isinstance(parts[0], bytes) else b"".join(parts))

    async def put_from(self, name: str, source: Path) -> None:
        await self._store.put_from(name, source)

    async def put_all(self, objects: Mapping[str, bytes]) -> None:
        slots = asyncio.Semaphore(PUTS_AT_ONCE)

        async def put(name: str, data: bytes) -> None:
            async with slots:
                await self._store.put(name, data)

        async with asyncio.TaskGroup() as tasks:
            for name, data in objects.items():
                tasks.create_task(put(name, data))

    async def commit(self) -> None:
        return None

    async def discard(self) -> None:
        return None


class BlockStore(Protocol):
    """Immutable named objects.

    All methods raise `pachd.errors.StorageError` when the backend fails and
    `pachd.errors.BlockNotFound` for a missing object.
    """

    async def put(self, name: str, data: bytes) -> None:
        """Store `data` under `name`, durably before returning.

        Writing a name that exists is allowed and leaves it unchanged (names
        are content hashes, so the bytes are the same). A crash mid-write never
        leaves a partial object visible.
        """

    def temporary(self) -> Path:
        """A fresh local path where a large object may be written before put_from.

        It lies where sweep() finds what a crash left behind.
        """

    async def ensure_room(self, size: int) -> None:
        """Raises DiskFull unless `size` more bytes of blocks fit while keeping room for metadata.

        Block writers call it first; metadata (tree nodes, the KV) may use the room it keeps.
        """

    async def put_from(self, name: str, source: Path) -> None:
        """Store the bytes of the local file `source` under `name`, as put() does.

        `source` (from temporary()) is consumed: moved into place or removed,
        whether the call succeeds or fails.
        """

    def batch(self) -> WriteBatch:
        """A new WriteBatch: writes made durable together, with one commit()."""

    async def sweep(self) -> int:
        """Remove what interrupted writes left behind; returns how many files went.

        Call it at start-up, before any write.
        """

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        """Bytes [offset, offset+size) of the object; size 0 means to the end.

        Reading past the end returns what there is (possibly b"").
        """

    async def exists(self, name: str) -> bool:
        """Whether the object exists."""

    async def renew(self, name: str) -> bool:
        """Sets the object's time (ObjectInfo.created) to now, if it exists; False if not.

        A writer that reuses an existing object renews it, so garbage
        collection treats it as just written. Putting an existing name renews it too.
        """

    async def delete_if_older(self, name: str, cutoff: datetime) -> bool:
        """Removes the object unless it was written or renewed at or after `cutoff`.

        Atomic with respect to put() and renew(): an object renewed while
        this runs is kept. True if it was removed.
        """

    async def stat(self, name: str) -> ObjectInfo:
        """Size and creation time of the object."""

    async def delete(self, name: str) -> None:
        """Remove the object; no error if it is absent."""

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Every object whose name starts with `prefix`, in name order."""

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
