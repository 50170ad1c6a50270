"""One pachd per data dir: an exclusive lock held for the life of the process.

Two pachds on one data dir would each believe they own its SQLite store, its
local blocks and its replica identity. The lock is an flock(2) on a file in
the data dir, so the kernel releases it when the process ends, however it
ends (kill -9 included): a restarted pachd never finds a stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "pachd.lock"


class DataDirBusy(Exception):
    """Another live process holds the data dir."""


class DataDirLock:
    def __init__(self, fd: int, path: Path) -> None:
        self._fd = fd
        self.path = path

    @classmethod
    def acquire(cls, data_dir: Path) -> DataDirLock:
        """Takes the lock at once, or raises DataDirBusy naming the holder's PID."""
        path = data_dir / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirBusy(f"data dir {data_dir} is in use by another pachd (pid {holder})") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1
