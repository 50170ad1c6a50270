"""One conformance suite for every block store (local files, Google Cloud Storage)."""

from __future__ import annotations

import asyncio
import os

import pytest

from pachd.errors import BlockNotFound, StorageError
from pachd.storage.blocks import BlockStore
from pachd.storage.gcs import GcsBlockStore
from tests.support.gcs import GcsEmulator


async def test_put_get_ranges(block_store: BlockStore) -> None:
    await block_store.put("blocks/abc", b"0123456789")
    assert await block_store.get("blocks/abc") == b"0123456789"
    assert await block_store.get("blocks/abc", 3, 4) == b"3456"
    assert await block_store.get("blocks/abc", 7) == b"789"
    assert await block_store.get("blocks/abc", 8, 10) == b"89"
    assert await block_store.get("blocks/abc", 20) == b""


async def test_exists_stat_delete(block_store: BlockStore) -> None:
    assert not await block_store.exists("blocks/x")
    await block_store.put("blocks/x", b"hello")
    assert await block_store.exists("blocks/x")
    info = await block_store.stat("blocks/x")
    assert info.name == "blocks/x" and info.size == 5 and info.created.year > 2000
    await block_store.delete("blocks/x")
    await block_store.delete("blocks/x")
    assert not await block_store.exists("blocks/x")


async def test_missing_objects(block_store: BlockStore) -> None:
    with pytest.raises(BlockNotFound):
        await block_store.get("blocks/none")
    with pytest.raises(BlockNotFound):
        await block_store.stat("blocks/none")


async def test_list_by_prefix_in_order(block_store: BlockStore) -> None:
    for name in ["blocks/bb", "blocks/aa", "trees/cc", "blocks/ab"]:
        await block_store.put(name, name.encode())
    assert [i.name async for i in block_store.list("blocks/")] == ["blocks/aa", "blocks/ab", "blocks/bb"]
    assert len([i async for i in block_store.list()]) == 4


async def test_puts_are_idempotent_even_concurrently(block_store: BlockStore) -> None:
    data = os.urandom(1 << 20)
    await asyncio.gather(*(block_store.put("blocks/same", data) for _ in range(8)))
    await block_store.put("blocks/same", data)
    assert await block_store.get("blocks/same") == data


async def test_a_batch_writes_many_small_objects_in_one_call_each_whole_once_committed(block_store: BlockStore) -> None:
    await block_store.put("trees/n001", b"1")  # there already: written again all the same
    objects = {f"trees/n{i:03d}": b"%d" % i * (i % 5) for i in range(40)}  # some empty
    batch = block_store.batch()
    await batch.put_all(objects)
    await batch.commit()
    for name, data in objects.items():
        assert await block_store.get(name) == data
    assert [i.name async for i in block_store.list("trees/")] == sorted(objects)


async def test_large_objects(block_store: BlockStore) -> None:
    data = os.urandom(20 << 20)
    await block_store.put("blocks/large", data)
    assert await block_store.get("blocks/large") == data
    assert await block_store.get("blocks/large", 10 << 20, 5) == data[10 << 20:(10 << 20) + 5]


async def test_gcs_outage_fails_then_recovers(gcs_emulator: GcsEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    import pachd.storage.gcs as gcs

    monkeypatch.setattr(gcs, "RETRY", gcs.RETRY.with_timeout(2.0))
    gcs_emulator.create_bucket("outage")
    store = GcsBlockStore("outage", gcs_emulator.client())
    await store.put("blocks/kept", b"kept")
    gcs_emulator.stop()
    try:
        with pytest.raises(StorageError):
            await asyncio.wait_for(store.put("blocks/lost", b"x"), 30)
        with pytest.raises(StorageError):
            await asyncio.wait_for(store.get("blocks/kept"), 30)
    finally:
        gcs_emulator.start()
    assert await store.get("blocks/kept") == b"kept"
    await store.put("blocks/new", b"fine")
    await store.close()


async def test_put_from_a_local_file_consumes_it(block_store: BlockStore) -> None:
    data = os.urandom(3 << 20)
    source = block_store.temporary()
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(data)
    await block_store.put_from("blocks/spilled", source)
    assert not source.exists()
    assert await block_store.get("blocks/spilled") == data
    again = block_store.temporary()
    again.write_bytes(data)
    await block_store.put_from("blocks/spilled", again)  # already there: the file just goes
    assert not again.exists()
    assert await block_store.get("blocks/spilled", 5, 3) == data[5:8]


async def test_sweep_removes_what_interrupted_writes_left(block_store: BlockStore) -> None:
    leftover = block_store.temporary()
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a block")
    await block_store.sweep()
    assert not leftover.exists()
    assert [i async for i in block_store.list()] == []


async def test_delete_if_older_keeps_what_was_renewed(block_store: BlockStore) -> None:
    from datetime import datetime, timedelta, timezone

    await block_store.put("blocks/old", b"old")
    await block_store.put("blocks/reused", b"reused")
    cutoff = datetime.now(timezone.utc) + timedelta(seconds=5)  # both were written before this
    assert await block_store.renew("blocks/reused")
    assert not await block_store.renew("blocks/absent")
    assert not await block_store.delete_if_older("blocks/old", datetime.now(timezone.utc) - timedelta(hours=1))
    assert await block_store.delete_if_older("blocks/old", cutoff)
    assert not await block_store.exists("blocks/old")
    assert not await block_store.delete_if_older("blocks/absent", cutoff)
    renewed_at = (await block_store.stat("blocks/reused")).created
    assert not await block_store.delete_if_older("blocks/reused", renewed_at)
    assert await block_store.get("blocks/reused") == b"reused"
