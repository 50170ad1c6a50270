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
