"""Block files are written through the page cache: they hold exactly their parts whatever their
sizes, counts and short writes, and a block just stored is in the cache, where a get-file right
after the put reads it (not from the disk). Its writeback to the disk starts as soon as it is
written, so the sync before its name is published finds little left to write."""

from __future__ import annotations

import asyncio
import ctypes
import mmap
import os
import random
import struct
import time
from pathlib import Path

import pytest

from pachd.storage import blocks
from pachd.storage.blocks import write_new, write_parts
from pachd.storage.localdisk import LocalBlockStore

MIB = 1 << 20


def _parts(seed: int) -> list[bytes | memoryview]:
    rng = random.Random(seed)
    sizes = [0, 1, 4095, 4096, 4097, 8 * MIB - 1, 8 * MIB + 1, 3 * MIB + 7, 512, 0]
    rng.shuffle(sizes)
    return [rng.randbytes(size) if n % 2 else memoryview(rng.randbytes(size)) for n, size in enumerate(sizes)]


def _written(path: Path, parts: list[bytes | memoryview]) -> None:
    fd = write_new(path)
    try:
        write_parts(fd, parts)
    finally:
        os.close(fd)


def test_a_file_holds_its_parts_whatever_their_sizes_and_count(tmp_path: Path) -> None:
    for seed in range(3):
        parts = _parts(seed)
        _written(tmp_path / f"block{seed}", parts)
        assert (tmp_path / f"block{seed}").read_bytes() == b"".join(parts)
    many = [bytes([n % 251]) * (n % 7) for n in range(3 * blocks.WRITTEN_AT_ONCE + 5)]  # more than one writev
    _written(tmp_path / "many", list(many))
    assert (tmp_path / "many").read_bytes() == b"".join(many)
    with pytest.raises(FileExistsError):
        write_new(tmp_path / "many")


def test_short_writes_lose_and_repeat_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writev = os.writev

    def short(fd: int, buffers: list[memoryview]) -> int:  # as a full disk or a signal may cut a write
        return writev(fd, [memoryview(b"".join(bytes(b) for b in buffers))[:1000]])

    monkeypatch.setattr(blocks.os, "writev", short)
    parts = _parts(7)[:6]
    _written(tmp_path / "short", parts)
    assert (tmp_path / "short").read_bytes() == b"".join(parts)


def _resident(path: Path) -> int:
    """How many of the file's pages are in the page cache (mincore), without reading it."""
    size = path.stat().st_size
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    vector = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
        start = ctypes.c_char.from_buffer(mapped)  # a private mapping, never written: no page is touched
        try:
            if libc.mincore(ctypes.addressof(start), size, vector) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            del start  # the mapping closes only once nothing points into it
    return sum(byte & 1 for byte in vector.raw)


async def test_a_block_just_stored_is_in_the_page_cache(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path / "store")
    data = os.urandom(24 * MIB)
    batch = store.batch()
    await batch.put("blocks/big", [data])
    await batch.commit()
    path = store._path("blocks/big")
    assert _resident(path) == len(data) // mmap.PAGESIZE  # before anything reads it
    assert path.read_bytes() == data
    await store.close()


KPF_DIRTY, KPF_WRITEBACK = 1 << 4, 1 << 8  # /proc/kpageflags' bits (linux/kernel-page-flags.h)
FRAME = (1 << 55) - 1  # a /proc/self/pagemap entry's page frame number; bit 63: the page is present
DISK_FILESYSTEMS = ("ext2", "ext3", "ext4", "xfs", "btrfs")


def _unwritten(path: Path) -> int:
    """How many of the file's pages the disk does not hold yet (dirty, or being written), from the
    page cache's flags for each (/proc/kpageflags, found through /proc/self/pagemap: root only)."""
    size = path.stat().st_size
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_COPY) as mapped, \
            open("/proc/self/pagemap", "rb") as pagemap, open("/proc/kpageflags", "rb") as kpageflags:
        start = ctypes.c_char.from_buffer(mapped)  # never written: the mapping shows the cache's own pages
        try:
            first = ctypes.addressof(start) // mmap.PAGESIZE
            unwritten = 0
            for page in range(0, size, mmap.PAGESIZE):
                mapped[page]  # maps the page, which is in the cache (nothing read from the disk)
                pagemap.seek((first + page // mmap.PAGESIZE) * 8)
                (entry,) = struct.unpack("<Q", pagemap.read(8))
                if not (entry >> 63 and entry & FRAME):  # frames are hidden without CAP_SYS_ADMIN
                    pytest.skip("/proc/self/pagemap gives no page frames here")
                kpageflags.seek((entry & FRAME) * 8)
                (flags,) = struct.unpack("<Q", kpageflags.read(8))
                unwritten += bool(flags & (KPF_DIRTY | KPF_WRITEBACK))
            return unwritten
        finally:
            del start


def _filesystem(path: Path) -> str:
    """The type of the filesystem `path` is on (the longest mount point above it)."""
    mounts = [line.split()[1:3] for line in Path("/proc/self/mounts").read_text().splitlines()]
    resolved = str(path.resolve())
    above = [(point, kind) for point, kind in mounts if resolved == point or resolved.startswith(point.rstrip("/") + "/")]
    return max(above, key=lambda mount: len(mount[0]))[1]


@pytest.mark.skipif(not os.access("/proc/kpageflags", os.R_OK), reason="page flags are root's to read")
async def test_a_blocks_writeback_starts_as_soon_as_it_is_written(tmp_path: Path) -> None:
    """Written and not yet synced, a block goes to the disk now, not when the kernel's flusher finds
    it 30 s later (or at the batch's sync, which would then write the whole put at once)."""
    if _filesystem(tmp_path) not in DISK_FILESYSTEMS:  # tmpfs has no disk, a stacked one (overlay) its pages below
        pytest.skip(f"the store is on {_filesystem(tmp_path)}")
    store = LocalBlockStore(tmp_path / "store")
    batch = store.batch()
    await batch.put("blocks/big", [os.urandom(16 * MIB)])
    (written,) = list(store.temporary().parent.iterdir())
    deadline = time.monotonic() + 10.0  # against the flusher's 30 s (vm.dirty_expire_centisecs)
    while (left := _unwritten(written)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left == 0, f"{left} pages of a block written are still not on the disk"
    await batch.commit()
    await store.close()
