"""Readahead: what a DirectFile writes around the page cache is asked back into it, in a thread
of its own, in bounded steps; a full queue drops hints instead of piling them up."""

from __future__ import annotations

import ctypes
import hashlib
import mmap
import os
import threading
from pathlib import Path

from pachd.pfs.blocks import BlockWriter
from pachd.pfs.chunking import Piece
from pachd.storage import readahead
from pachd.storage.direct import STAGE, DirectFile
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.readahead import Readahead
from tests.support.wait import wait_until

MIB = 1 << 20
_libc = ctypes.CDLL(None, use_errno=True)


def _cached(path: Path) -> int:
    """Bytes of the file in the page cache (mincore over a mapping of it)."""
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    # A private mapping (never written: no page is copied) that ctypes can take the address of.
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, flags=mmap.MAP_PRIVATE,
                                               prot=mmap.PROT_READ | mmap.PROT_WRITE) as mapped:
        start = ctypes.c_char.from_buffer(mapped)
        vector = (ctypes.c_ubyte * pages)()
        try:
            if _libc.mincore(ctypes.c_void_p(ctypes.addressof(start)), ctypes.c_size_t(size), vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del start
    return sum(page & 1 for page in vector) * mmap.PAGESIZE


class Recorder:
    """An advise() that records its calls, and holds them while `held` is clear."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.held = threading.Event()
        self.held.set()
        self.entered = threading.Event()

    def __call__(self, fd: int, offset: int, size: int, advice: int) -> None:
        self.entered.set()
        self.held.wait(60)
        os.fstat(fd)  # the descriptor is still open (a duplicate the Readahead owns)
        self.calls.append((offset, size, advice))


def test_a_direct_file_is_read_back_into_the_page_cache(tmp_path: Path) -> None:
    ahead = Readahead()
    path = tmp_path / "block"
    data = os.urandom(3 * STAGE + 12345)
    try:
        with DirectFile(path, readahead=ahead) as out:
            out.write([data])
        assert out.direct
        assert path.read_bytes() == data
        os.posix_fadvise(os.open(path, os.O_RDONLY), 0, 0, os.POSIX_FADV_DONTNEED)  # what reading it cached
        with DirectFile(tmp_path / "again", readahead=ahead) as out:
            out.write([data])
        wait_until(lambda: ahead.asked >= 3 * STAGE, what="the direct writes to be asked for")
        wait_until(lambda: _cached(tmp_path / "again") >= 3 * STAGE, what="the block in the page cache")
    finally:
        ahead.close()


def test_ranges_are_asked_in_steps_and_a_full_queue_drops_them(tmp_path: Path) -> None:
    recorder = Recorder()
    ahead = Readahead(pending=4 * MIB, queued=2, advise=recorder)
    fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    try:
        recorder.held.clear()
        assert ahead.ask(fd, 0, MIB)  # taken by the thread, which waits in advise()
        assert recorder.entered.wait(60)
        assert ahead.ask(fd, MIB, 2 * MIB + 5)
        assert not ahead.ask(fd, 4 * MIB, 2 * MIB)  # more bytes than may wait
        assert ahead.ask(fd, 8 * MIB, 7)
        assert not ahead.ask(fd, 9 * MIB, 7)  # more ranges than may wait
        assert not ahead.ask(fd, 10 * MIB, 0)
        os.close(fd)  # the caller's descriptor may go at once
        fd = -1
        recorder.held.set()
        wait_until(lambda: ahead.asked == 3 * MIB + 12, what="every queued range to be asked for")
        assert recorder.calls == [(0, MIB, os.POSIX_FADV_WILLNEED), (MIB, MIB, os.POSIX_FADV_WILLNEED),
                                  (2 * MIB, MIB, os.POSIX_FADV_WILLNEED), (3 * MIB, 5, os.POSIX_FADV_WILLNEED),
                                  (8 * MIB, 7, os.POSIX_FADV_WILLNEED)]
        assert readahead.STEP == MIB
        assert ahead.dropped == 2 * MIB + 7
    finally:
        if fd >= 0:
            os.close(fd)
        ahead.close()
    assert not ahead.ask(os.open(os.devnull, os.O_RDONLY), 0, MIB)  # closed: nothing more is asked


def test_close_drops_what_waits_and_ends_the_thread(tmp_path: Path) -> None:
    recorder = Recorder()
    ahead = Readahead(advise=recorder)
    with open(tmp_path / "file", "wb") as handle:
        recorder.held.clear()
        assert ahead.ask(handle.fileno(), 0, MIB)
        assert recorder.entered.wait(60)
        for n in range(1, 4):
            assert ahead.ask(handle.fileno(), n * MIB, MIB)
    closing = threading.Thread(target=ahead.close)
    closing.start()
    recorder.held.set()
    closing.join(60)
    assert not closing.is_alive()
    assert len(recorder.calls) == 1  # the one under way finished; the rest were dropped
    assert ahead.dropped == 3 * MIB


async def test_the_local_store_asks_for_its_blocks_and_a_long_block(tmp_path: Path) -> None:
    recorder = Recorder()
    store = LocalBlockStore(tmp_path / "objects", reserve=0, readahead=Readahead(advise=recorder))
    block = os.urandom(2 * STAGE)
    long = os.urandom(3 * STAGE + 4096 * 3 + 100)
    try:
        async with BlockWriter(store) as writer:
            await writer.submit([block])
            for start in range(0, len(long), 5 * MIB):
                end = min(len(long), start + 5 * MIB)
                await writer.write(Piece((memoryview(long)[start:end],), end == len(long)))
            await writer.commit()
        wait_until(lambda: store.readahead.asked == 2 * STAGE + 3 * STAGE + 4096 * 3,
                   what="the direct writes of both blocks to be asked for")
        for data in (block, long):
            assert await store.get("blocks/" + hashlib.sha512(data).hexdigest()) == data
    finally:
        await store.close()
    assert not store.readahead.ask(0, 0, MIB)  # closed with the store
