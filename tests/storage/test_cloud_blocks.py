"""The S3 and Azure block stores under trouble: throttling, uploads that die midway, outages.

Each runs against a real server (moto's S3 server, Azurite) behind a
StoreFront (tests/support/store_front.py), which throttles, breaks or cuts
off the connections between the store and the SDK.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from pachd.errors import StorageError
from pachd.storage.azure import AzureBlockStore
from pachd.storage.blocks import BlockStore
from pachd.storage.s3 import S3BlockStore
from tests.support.azurite import SERVER_BUSY, Azurite
from tests.support.s3 import SLOW_DOWN, S3Server
from tests.support.store_front import StoreFront, Throttle

BLOCK = 8 << 20  # pachd's block size


@dataclass(frozen=True, slots=True)
class Cloud:
    front: StoreFront
    store: BlockStore  # retries as pachd does
    once: BlockStore  # the same bucket, never retrying
    throttle: Throttle  # the store's own "slow down" answer


@pytest.fixture(params=["s3", "azure"])
async def cloud(request: pytest.FixtureRequest) -> AsyncIterator[Cloud]:
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    made: Cloud
    if request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        s3.create_bucket(bucket)
        made = Cloud(s3.front, S3BlockStore(bucket, s3.client()), S3BlockStore(bucket, s3.client(max_attempts=1)),
                     SLOW_DOWN)
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        azurite.create_container(bucket)
        made = Cloud(azurite.front, AzureBlockStore(azurite.client(bucket)),
                     AzureBlockStore(azurite.client(bucket, retries=0)), SERVER_BUSY)
    yield made
    made.front.restore()
    await made.store.close()
    await made.once.close()


async def test_throttled_requests_are_retried_off_the_event_loop(cloud: Cloud) -> None:
    """Three "slow down" answers in a row, then the upload of a whole block goes through;
    the event loop keeps running while the SDK backs off."""
    data = os.urandom(BLOCK)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    before = cloud.front.throttled
    cloud.front.throttle(3, cloud.throttle)
    ticker = asyncio.create_task(tick())
    try:
        await cloud.store.put("blocks/busy", data)
        assert ticks > 0
    finally:
        ticker.cancel()
    assert cloud.front.throttled - before == 3
    assert await cloud.store.get("blocks/busy") == data


async def test_throttling_without_retries_is_a_storage_error(cloud: Cloud) -> None:
    """The test above has teeth: with retries off, the same answer fails the put."""
    cloud.front.throttle(1, cloud.throttle)
    with pytest.raises(StorageError):
        await cloud.once.put("blocks/busy", b"x")
    assert not await cloud.store.exists("blocks/busy")


async def test_an_upload_broken_midway_leaves_nothing(cloud: Cloud) -> None:
    """Half a block reaches the store, then the connection dies: no object appears."""
    data = os.urandom(BLOCK)
    before = cloud.front.broken
    cloud.front.break_upload(BLOCK // 2)
    with pytest.raises(StorageError):
        await cloud.once.put("blocks/half", data)
    assert cloud.front.broken - before == 1
    assert not await cloud.store.exists("blocks/half")
    assert [info.name async for info in cloud.store.list("blocks/")] == []


async def test_an_upload_broken_midway_is_retried_whole(cloud: Cloud) -> None:
    data = os.urandom(BLOCK)
    before = cloud.front.broken
    cloud.front.break_upload(BLOCK // 2)
    await cloud.store.put("blocks/again", data)
    assert cloud.front.broken - before == 1
    assert await cloud.store.get("blocks/again") == data
    assert (await cloud.store.stat("blocks/again")).size == BLOCK


async def test_outage_fails_then_recovers(cloud: Cloud) -> None:
    await cloud.store.put("blocks/kept", b"kept")
    cloud.front.cut()
    try:
        with pytest.raises(StorageError):
            await asyncio.wait_for(cloud.once.put("blocks/lost", b"x"), 60)
        with pytest.raises(StorageError):
            await asyncio.wait_for(cloud.once.get("blocks/kept"), 60)
    finally:
        cloud.front.restore()
    assert await cloud.store.get("blocks/kept") == b"kept"
    assert not await cloud.store.exists("blocks/lost")
    await cloud.store.put("blocks/new", b"fine")
