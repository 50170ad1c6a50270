"""LocalBlockStore: immutable objects as files under one directory.

A name "blocks/<hash>" lives at root/blocks/<first two chars>/<hash>, so no
directory grows past a few thousand entries. A write goes to a temporary file
in the same filesystem, is fsynced, then renamed into place (and the
directory fsynced): a crash never leaves a partial object under its name.
All disk I/O runs in worker threads.
"""

from __future__ import annotations

import builtins

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

from pachd.errors import BlockNotFound, InvalidArgument, StorageError
from pachd.storage.blocks import ObjectInfo


class LocalBlockStore:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._tmp = root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

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
            raise StorageError(f"writing {name} failed: {err}") from err

    def _write(self, path: Path, data: bytes) -> None:
        if path.exists():
            return  # names are content hashes: the bytes are already there
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / uuid.uuid4().hex
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

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
