"""A block larger than a block (`-d none`) goes through a temporary file in steps, hashed in one
lane and written in another: its bytes and its name are the stream's whatever the lanes' pace, a
failed write fails the put and leaves nothing behind, and a stalled disk holds the stream back
after a bounded number of steps (memory stays bounded)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pachd.errors import DiskFull
from pachd.interceptors import pach_error
from pachd.pfs import blocks
from pachd.pfs.chunking import Delimiter
from pachd.storage.localdisk import LocalBlockStore

MIB = 1 << 20


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalBlockStore]:
    yield LocalBlockStore(tmp_path / "store")


def _leftovers(store: LocalBlockStore) -> list[Path]:
    folder = store.temporary().parent
    return sorted(folder.iterdir()) if folder.exists() else []


async def _chunks(data: bytes, received: list[int] | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), MIB):
        if received is not None:
            received.append(start + MIB)
        yield data[start : start + MIB]


async def test_the_lanes_keep_the_streams_order_whatever_their_pace(store: LocalBlockStore,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = os.urandom(5 * blocks.STEP + 4321)
    update, write = blocks._update, blocks.write_parts
    pace = iter([0.03, 0.0, 0.02, 0.0, 0.01, 0.0, 0.0] * 4)

    def slow_update(digest: hashlib._Hash, parts: blocks.Parts) -> None:
        threading.Event().wait(next(pace))  # steps finish out of the order they started in, if allowed to
        update(digest, parts)

    def slow_write(fd: int, parts: blocks.Parts) -> None:
        threading.Event().wait(next(pace))
        write(fd, parts)

    monkeypatch.setattr(blocks, "_update", slow_update)
    monkeypatch.setattr(blocks, "write_parts", slow_write)
    (ref,) = await blocks.put_stream(store, Delimiter.NONE, _chunks(data))
    assert ref.hash == hashlib.sha512(data).hexdigest() and ref.upper == len(data)
    assert await store.get(blocks.block_name(ref.hash)) == data
    assert _leftovers(store) == []


async def test_a_failed_write_fails_the_put_and_leaves_nothing(store: LocalBlockStore,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    write = blocks.write_parts
    writes: list[int] = []

    def failing(fd: int, parts: blocks.Parts) -> None:
        writes.append(len(writes))
        if len(writes) == 2:
            raise OSError(28, "No space left on device")
        write(fd, parts)

    monkeypatch.setattr(blocks, "write_parts", failing)
    with pytest.raises(BaseException) as raised:  # a group of one, from the writer's tasks: as gRPC sees it
        await blocks.put_stream(store, Delimiter.NONE, _chunks(os.urandom(6 * blocks.STEP)))
    assert isinstance(pach_error(raised.value), DiskFull)
    assert writes == [0, 1]  # no step was written after the one that failed
    assert _leftovers(store) == []
    assert [info async for info in store.list(blocks.PREFIX)] == []


async def test_a_stalled_disk_holds_the_stream_back(store: LocalBlockStore, monkeypatch: pytest.MonkeyPatch) -> None:
    write = blocks.write_parts
    disk = threading.Event()

    def stalled(fd: int, parts: blocks.Parts) -> None:
        disk.wait(30)
        write(fd, parts)

    monkeypatch.setattr(blocks, "write_parts", stalled)
    data = os.urandom(12 * blocks.STEP)
    received: list[int] = []
    put = asyncio.ensure_future(blocks.put_stream(store, Delimiter.NONE, _chunks(data, received)))
    most = (blocks._LongBlock.IN_FLIGHT + 2) * blocks.STEP  # the lanes' steps, the one gathered, one more message
    deadline = asyncio.get_running_loop().time() + 10
    while asyncio.get_running_loop().time() < deadline and not put.done():
        settled = len(received)
        await asyncio.sleep(0.2)
        if len(received) == settled:  # the stream stopped asking for more
            break
    assert not put.done() and received[-1] <= most, f"{received[-1] / MIB:.0f} MiB taken in while nothing was written"
    disk.set()
    (ref,) = await put
    assert ref.hash == hashlib.sha512(data).hexdigest()
    assert _leftovers(store) == []


async def test_a_cancelled_put_waits_for_its_lanes_then_leaves_nothing(store: LocalBlockStore,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    write = blocks.write_parts
    disk = threading.Event()
    writes: list[OSError | None] = []  # each write's outcome, once it is over

    def stalled(fd: int, parts: blocks.Parts) -> None:
        disk.wait(30)
        try:
            write(fd, parts)
            writes.append(None)
        except OSError as err:  # the file closed under a write still running: what must not happen
            writes.append(err)

    monkeypatch.setattr(blocks, "write_parts", stalled)
    received: list[int] = []
    put = asyncio.ensure_future(blocks.put_stream(store, Delimiter.NONE, _chunks(os.urandom(8 * blocks.STEP), received)))
    while len(received) < 3 * blocks.STEP // MIB:  # steps are in the lanes
        await asyncio.sleep(0.01)
    put.cancel()
    await asyncio.wait([put], timeout=0.5)  # a put that left its writes running would be over by now
    disk.set()
    with pytest.raises(asyncio.CancelledError):
        await put
    deadline = asyncio.get_running_loop().time() + 10
    while len(writes) < blocks._LongBlock.IN_FLIGHT and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)  # (only a put that did not wait for them gets here with writes running)
    assert writes == [None] * blocks._LongBlock.IN_FLIGHT
    assert _leftovers(store) == []
