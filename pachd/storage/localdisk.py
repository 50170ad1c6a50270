"""LocalBlockStore: immutable objects as files under one directory.

A name "blocks/<hash>" lives at root/blocks/<first two chars>/<hash>, so no
directory grows past a few thousand entries. A write goes to a temporary file
in the same filesystem (root/tmp), is fsynced, then renamed into place (and
the directory fsynced): a crash never leaves a partial object under its name,
and a failed write removes its temporary file; sweep() clears what a crash
left in root/tmp. All disk I/O runs in worker threads.
"""

from __future__ import annotations

import builtins

import asyncio
import os
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

from pachd.errors import BlockNotFound, InvalidArgument, StorageError
from pachd.storage.blocks import RESERVE, ObjectInfo, check_room, disk_error, empty_folder


class LocalBlockStore:
    def __init__(self, root: Path, *, reserve: int = RESERVE) -> None:
        self._root = root
        self._reserve = reserve
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
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._move(tmp, path)

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
        try:
            if self._renew(path):
                return
            fd = os.open(source, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, path)
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        finally:
            source.unlink(missing_ok=True)

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
        return None


def _read(path: Path, offset: int, size: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size if size > 0 else -1)
