"""LocalBlockStore: immutable objects as files under one directory.

A name "blocks/<hash>" lives at root/blocks/<first two chars>/<hash>, so no
directory grows past a few thousand entries. A write goes to a temporary file
in the same filesystem (root/tmp, through the page cache: a get-file right after
the put reads it from there), is synced (fdatasync), then renamed into place, and the directory synced: a
crash never leaves a partial object under its name, and a failed write
removes its temporary file; sweep() clears what a crash left in root/tmp. A
batch (one put-file stream's blocks) writes all its temporary files first and
syncs them together at commit(): every file, then every rename, then each
directory once, so the disk's journal commits a handful of times per batch
instead of twice per block. All disk I/O runs in worker threads; the sync
calls go through Disk, so tests can see their order.
"""

from __future__ import annotations

import builtins

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

from pachd.errors import BlockNotFound, InvalidArgument, StorageError
from pachd.storage.blocks import (RESERVE, ObjectInfo, Parts, WriteBatch, check_room, disk_error, empty_folder,
                                  write_new, write_parts)


class Disk:
    """The calls that make a write durable, in the order the store makes them."""

    def sync_file(self, path: Path) -> None:
        """Data (and the size) of the file at `path` on the disk."""
        _sync(path, os.fdatasync)

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def sync_dir(self, folder: Path) -> None:
        """The folder's entries (renames into it) on the disk."""
        _sync(folder, os.fsync)


def _sync(path: Path, sync: Callable[[int], None]) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        sync(fd)
    finally:
        os.close(fd)


class LocalBlockStore:
    def __init__(self, root: Path, *, reserve: int = RESERVE, disk: Disk | None = None) -> None:
        self._root = root
        self._reserve = reserve
        self.disk = disk or Disk()
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Renewing an object and deleting it when old exclude each other (one pachd owns the folder).
        self._renewing = threading.Lock()

    def _path(self, name: str) -> Path:
        folder, _, leaf = name.rpartition("/")
        if not leaf or ".." in name.split("/") or name.startswith("/") or "\x00" in name:
            raise InvalidArgument(f"invalid object name {name!r}")
        return self._root / folder / leaf[:2] / leaf

    async def put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as err:
            raise disk_error(err, f"writing {name}") from err

    def _write(self, path: Path, data: bytes) -> None:
        if self._renew(path):
            return  # names are content hashes: the bytes are already there
        tmp = self.temporary()
        self._write_temporary(tmp, [data])
        self._move(tmp, path)

    def _write_temporary(self, tmp: Path, parts: Parts) -> None:
        """Writes the new temporary file `tmp` holding `parts` (not synced)."""
        fd = write_new(tmp)
        try:
            write_parts(fd, parts)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)

    def temporary(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    async def ensure_room(self, size: int) -> None:
        await asyncio.to_thread(check_room, self._tmp, size, self._reserve)

    async def put_from(self, name: str, source: Path) -> None:
        try:
            path = self._path(name)
            await asyncio.to_thread(self._move, source, path)
        except OSError as err:
            raise disk_error(err, f"writing {name}") from err
        finally:
            source.unlink(missing_ok=True)  # not there any more once moved into place

    def _move(self, source: Path, path: Path) -> None:
        """Makes the temporary file `source` durable at `path` (removing it if `path` exists)."""
        self._publish([(source, path)])

    def _publish(self, moves: Sequence[tuple[Path, Path]]) -> None:
        """Makes each temporary file durable at its path: every file synced, then renamed
        (or dropped where its path exists: same name, same bytes), then each folder synced."""
        try:
            todo = [(source, path) for source, path in moves if not self._renew(path)]
            for source, _ in todo:
                self.disk.sync_file(source)
            for source, path in todo:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.disk.replace(source, path)
            for folder in sorted({path.parent for _, path in moves}):
                self.disk.sync_dir(folder)
        finally:
            for source, _ in moves:
                source.unlink(missing_ok=True)

    def batch(self) -> WriteBatch:
        return LocalBatch(self)

    def _renew(self, path: Path) -> bool:
        with self._renewing:
            try:
                os.utime(path)
                return True
            except FileNotFoundError:
                return False

    async def renew(self, name: str) -> bool:
        try:
            return await asyncio.to_thread(self._renew, self._path(name))
        except OSError as err:
            raise StorageError(f"renewing {name} failed: {err}") from err

    async def delete_if_older(self, name: str, cutoff: datetime) -> bool:
        path = self._path(name)

        def delete() -> bool:
            with self._renewing:
                try:
                    if datetime.fromtimestamp(path.stat().st_mtime, timezone.utc) >= cutoff:
                        return False
                    path.unlink()
                    return True
                except FileNotFoundError:
                    return False

        try:
            return await asyncio.to_thread(delete)
        except OSError as err:
            raise StorageError(f"deleting {name} failed: {err}") from err

    async def sweep(self) -> int:
        return await asyncio.to_thread(empty_folder, self._tmp)

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        path = self._path(name)
        try:
            return await asyncio.to_thread(_read, path, offset, size)
        except FileNotFoundError as err:
            raise BlockNotFound(f"object {name} not found") from err
        except OSError as err:
            raise StorageError(f"reading {name} failed: {err}") from err

    def open_object(self, name: str) -> int:
        """A read-only file descriptor of the object, to hand to a process on this machine (the
        fast path, pachd/local_fastpath.py); the caller closes it. Blocking: call it in a thread."""
        try:
            return os.open(self._path(name), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as err:
            raise BlockNotFound(f"object {name} not found") from err
        except OSError as err:
            raise StorageError(f"reading {name} failed: {err}") from err

    async def exists(self, name: str) -> bool:
        return await asyncio.to_thread(self._path(name).exists)

    async def stat(self, name: str) -> ObjectInfo:
        try:
            st = await asyncio.to_thread(os.stat, self._path(name))
        except FileNotFoundError as err:
            raise BlockNotFound(f"object {name} not found") from err
        return ObjectInfo(name, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    async def delete(self, name: str) -> None:
        try:
            await asyncio.to_thread(self._path(name).unlink, True)
        except OSError as err:
            raise StorageError(f"deleting {name} failed: {err}") from err

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        infos = await asyncio.to_thread(self._list, prefix)
        for info in infos:
            yield info

    def _list(self, prefix: str) -> builtins.list[ObjectInfo]:
        found = []
        for path in self._root.rglob("*"):
            rel = path.relative_to(self._root)
            if not path.is_file() or rel.parts[0] == "tmp":
                continue
            name = "/".join((*rel.parts[:-2], rel.parts[-1]))
            if name.startswith(prefix):
                st = path.stat()
                found.append(ObjectInfo(name, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc)))
        return sorted(found, key=lambda i: i.name)

    async def close(self) -> None:
        return None  # no connection to release


class LocalBatch:
    """A WriteBatch on the local disk: temporary files until commit() syncs and renames them all."""

    def __init__(self, store: LocalBlockStore) -> None:
        self._store = store
        self._moves: list[tuple[Path, Path]] = []  # (temporary file, where it goes)
        self._temporaries: list[Path] = []  # every temporary file, written or being written
        self._writing: set[asyncio.Future[None]] = set()
        self._reused: list[Path] = []
        self._names: set[str] = set()

    async def reuse(self, name: str) -> bool:
        path = self._store._path(name)
        if name in self._names:
            return True  # written earlier in this batch
        if not await self._store.renew(name):
            return False
        self._reused.append(path)  # its folder is synced at commit, in case its writer has not yet
        return True

    async def put(self, name: str, parts: Parts) -> None:
        await self._write([(name, parts)], f"writing {name}")

    async def put_from(self, name: str, source: Path) -> None:
        try:
            path = self._store._path(name)
        except BaseException:
            source.unlink(missing_ok=True)
            raise
        self._add(name, source, path)

    async def put_all(self, objects: Mapping[str, bytes]) -> None:
        await self._write([(name, [data]) for name, data in objects.items()], "writing tree nodes")

    async def _write(self, objects: Sequence[tuple[str, Parts]], what: str) -> None:
        """Writes the objects' temporary files from one thread (a handoff per small object would
        cost more than writing it), then adds them to the batch."""
        todo = [(name, self._store._path(name), self._store.temporary(), parts) for name, parts in objects]
        self._temporaries += [tmp for _, _, tmp, _ in todo]  # discard() removes them, even if this is cancelled

        def write() -> None:
            for _, _, tmp, parts in todo:
                self._store._write_temporary(tmp, parts)

        writing = asyncio.ensure_future(asyncio.to_thread(write))
        self._writing.add(writing)
        writing.add_done_callback(self._writing.discard)
        try:
            await asyncio.shield(writing)  # a cancelled put leaves the write to finish, for discard() to undo
        except OSError as err:
            raise disk_error(err, what) from err
        for name, path, tmp, _ in todo:
            self._add(name, tmp, path)

    def _add(self, name: str, tmp: Path, path: Path) -> None:
        if name in self._names:  # the same bytes twice in one batch
            tmp.unlink(missing_ok=True)
            return
        self._names.add(name)
        self._moves.append((tmp, path))

    async def commit(self) -> None:
        self._temporaries = []  # each is moved into place or removed now
        moves, self._moves = self._moves, []
        reused, self._reused = self._reused, []
        self._names.clear()

        def publish() -> None:
            self._store._publish(moves)
            for folder in sorted({path.parent for path in reused} - {path.parent for _, path in moves}):
                self._store.disk.sync_dir(folder)

        try:
            await asyncio.to_thread(publish)
        except OSError as err:
            raise disk_error(err, "syncing blocks") from err

    async def discard(self) -> None:
        await asyncio.gather(*self._writing, return_exceptions=True)  # writes still running first
        moves, self._moves = self._moves, []
        temporaries, self._temporaries = self._temporaries, []
        self._names.clear()

        def remove() -> None:
            for tmp in [*temporaries, *(source for source, _ in moves)]:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(remove)


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size if size > 0 else -1)
