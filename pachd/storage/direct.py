"""DirectFile: a new local file written around the page cache (O_DIRECT).

A block written through the page cache costs the kernel a copy of every byte
into it (1.4 s of CPU per GiB on our machines, as much as receiving it), and
the cache then flushes it to the disk at the sync anyway. With O_DIRECT the
disk reads the bytes from our buffer: they are copied once, in user space,
into an aligned staging buffer (O_DIRECT needs the address, length and file
offset aligned), and each full buffer is one write. The end of the file that
does not fill an aligned length is written through the page cache.

Where the filesystem refuses O_DIRECT (ramfs, some FUSE or network
filesystems: EINVAL, at the open or at a write), the file is written through
the page cache instead, whole. Files smaller than DIRECT_FROM are too.

Given a Readahead (readahead.py), a DirectFile asks for each range it wrote
around the cache to be read back into it, in the Readahead's thread: the
first read of a block just put then finds it in the cache.

A DirectFile is no more durable than any written file: O_DIRECT skips the
page cache, not the disk's own cache nor the file's size and extents, so the
writer still syncs the file (fdatasync) before naming it. Its methods block:
call them from a worker thread.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
from pathlib import Path
from types import TracebackType

from pachd.storage.blocks import Parts
from pachd.storage.readahead import Readahead

ALIGN = 4096
"""What O_DIRECT writes are aligned to (memory, length, offset): a page, which covers disks of 512 B
and 4 KiB sectors."""
STAGE = 8 * 1024 * 1024
"""Bytes of one write: disks take large direct writes several times faster than 1 MiB ones."""
DIRECT_FROM = 64 * 1024
"""Files smaller than this go through the page cache (a single write either way)."""
POOLED = 4
"""Staging buffers kept for the next files: a fresh one costs a page fault per 4 KiB at first touch."""

_pool: list[mmap.mmap] = []
_pool_lock = threading.Lock()


def _take_buffer() -> mmap.mmap:
    with _pool_lock:
        if _pool:
            return _pool.pop()
    return mmap.mmap(-1, STAGE)  # anonymous: page-aligned


def _give_buffer(buffer: mmap.mmap) -> None:
    with _pool_lock:
        if len(_pool) < POOLED:
            _pool.append(buffer)
            return
    buffer.close()


class DirectFile:
    """Creates `path` (which must not exist) and writes to it; use as a context manager, whose
    end writes what is staged and closes the file (or, leaving with an error, only closes it)."""

    def __init__(self, path: Path, *, direct: bool = True, readahead: Readahead | None = None) -> None:
        self.path = path
        self.direct = direct  # written around the page cache (False where that was refused)
        self._readahead = readahead
        self._written = 0  # bytes written to the file
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        if direct:
            # Turned on once created: a filesystem that refuses it at open(O_DIRECT) may have created the file.
            try:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) | os.O_DIRECT)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    os.close(self._fd)
                    raise
                self.direct = False
        self._stage: mmap.mmap | None = _take_buffer() if self.direct else None
        self._staged = 0

    def __enter__(self) -> DirectFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abandon()

    def write(self, parts: Parts) -> None:
        """Appends the parts' bytes, in order."""
        for part in parts:
            view = memoryview(part)
            if self._stage is None:
                _write_all(self._fd, view)
                continue
            while view:
                step = min(len(view), STAGE - self._staged)
                self._stage[self._staged : self._staged + step] = view[:step]
                self._staged += step
                view = view[step:]
                if self._staged == STAGE:
                    self._write_staged(STAGE)

    def close(self) -> None:
        """Writes what is staged (the unaligned end through the page cache) and closes the file."""
        try:
            if self._stage is not None and self._staged:
                aligned = self._staged - self._staged % ALIGN
                if aligned:
                    self._write_staged(aligned)
                if self._staged:
                    self._through_cache()
                    _write_all(self._fd, memoryview(self._stage)[: self._staged])
                    self._written += self._staged
                    self._staged = 0
        finally:
            self.abandon()

    def _write_staged(self, size: int) -> None:
        """Writes the first `size` staged bytes (aligned) and keeps the rest at the front."""
        assert self._stage is not None
        view = memoryview(self._stage)
        try:
            _write_all(self._fd, view[:size])
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
            self._through_cache()  # refused at the write, not the open: write this and the rest buffered
            self.direct = False
            _write_all(self._fd, view[:size])
        else:
            if self._readahead is not None:
                self._readahead.ask(self._fd, self._written, size)
        self._written += size
        rest = self._staged - size
        if rest:
            self._stage.move(0, size, rest)
        self._staged = rest

    def _through_cache(self) -> None:
        """Turns O_DIRECT off for the rest of the file."""
        fcntl.fcntl(self._fd, fcntl.F_SETFL, fcntl.fcntl(self._fd, fcntl.F_GETFL) & ~os.O_DIRECT)

    def fileno(self) -> int:
        return self._fd

    def abandon(self) -> None:
        """Closes the file without writing what is staged (again: nothing)."""
        stage, self._stage = self._stage, None
        if stage is not None:
            _give_buffer(stage)
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]
