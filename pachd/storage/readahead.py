"""Readahead: just-written block files read back into the page cache, from a thread of its own.

Blocks are written around the page cache (direct.py), so the first read of a
block just put (a get-file right after the put-file, a job's download) would
come from the disk, in the reader's time. A Readahead asks the kernel to read
each range a DirectFile wrote back into the cache (posix_fadvise WILLNEED)
while the put goes on, so the reader finds it there. The kernel does the
reading (the disk copies into the cache; about 0.1 s of CPU per GiB for the
asking), and the asking blocks while the disk is busy, so it runs in one
worker thread, never in the writer's: ask() only queues.

Bounded: at most PENDING bytes (and QUEUED ranges) wait to be asked for;
what comes while the queue is full is not asked for at all (a hint, not a
promise), so a disk slower than the puts never piles up work, descriptors
or cache. Each call asks for at most STEP bytes, since the kernel reads no
more than the device's readahead window per call. The page cache stays the
kernel's: pages read this way are the first it reclaims.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

PENDING = 256 * 1024 * 1024
"""Bytes waiting to be asked for, at most."""
QUEUED = 64
"""Ranges waiting to be asked for, at most (each holds a duplicated descriptor)."""
STEP = 1024 * 1024
"""Bytes asked for by one call: no more than the smallest readahead window the kernel honours."""

Advise = Callable[[int, int, int, int], None]


class Readahead:
    """Asks for ranges of files to be read into the page cache; close() on shutdown."""

    def __init__(self, *, pending: int = PENDING, queued: int = QUEUED,
                 advise: Advise = os.posix_fadvise) -> None:
        self._pending_max = pending
        self._queued_max = queued
        self._advise = advise
        self._queue: collections.deque[tuple[int, int, int]] = collections.deque()  # (own fd, offset, size)
        self._pending = 0
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.asked = 0
        """Bytes asked for so far."""
        self.dropped = 0
        """Bytes not asked for: the queue was full."""

    def ask(self, fd: int, offset: int, size: int) -> bool:
        """Queues bytes [offset, offset+size) of the open file `fd` (which the caller may close at
        once: a duplicate is kept); False where the queue is full and the range is not asked for."""
        if size <= 0:
            return False
        with self._wake:
            if self._closed or self._pending + size > self._pending_max or len(self._queue) >= self._queued_max:
                self.dropped += size
                return False
            try:
                own = os.dup(fd)
            except OSError:
                self.dropped += size
                return False
            self._queue.append((own, offset, size))
            self._pending += size
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="pachd-readahead", daemon=True)
                self._thread.start()
            self._wake.notify()
        return True

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closed:
                    self._wake.wait()
                if not self._queue:
                    return  # closed, and nothing left
                fd, offset, size = self._queue.popleft()
                closed = self._closed
                if closed:
                    self.dropped += size
            try:
                if not closed:
                    self._read(fd, offset, size)
            finally:
                os.close(fd)
                with self._wake:
                    self._pending -= size

    def _read(self, fd: int, offset: int, size: int) -> None:
        end = offset + size
        try:
            while offset < end:
                step = min(STEP, end - offset)
                self._advise(fd, offset, step, os.POSIX_FADV_WILLNEED)
                offset += step
                self.asked += step
        except OSError as err:  # a hint: the file may be on a filesystem without one
            logger.debug("readahead refused: %s", err)

    def close(self) -> None:
        """Stops asking: what waits is dropped, the thread ends. Blocks briefly: call it in a thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._wake:
            for fd, _, size in self._queue:
                os.close(fd)
                self.dropped += size
            self._queue.clear()
            self._pending = 0
