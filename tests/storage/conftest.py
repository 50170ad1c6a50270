"""The storage fixtures: each Protocol's backends, behind one parametrized fixture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pachd.storage.azure import AzureBlockStore
from pachd.storage.blocks import BlockStore
from pachd.storage.etcd import EtcdKV
from pachd.storage.gcs import GcsBlockStore
from pachd.storage.kv import KV
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.s3 import S3BlockStore
from pachd.storage.sqlite import SqliteKV
from tests.support.azurite import Azurite
from tests.support.etcd import EtcdServer
from tests.support.gcs import GcsEmulator
from tests.support.s3 import S3Server


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[EtcdServer]:
    """An etcd of this test alone, to kill and restart."""
    server = EtcdServer(tmp_path / "etcd").start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "etcd"])
async def kv(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KV]:
    store: KV
    if request.param == "sqlite":
        store = await SqliteKV.open(tmp_path / "meta.db")
    else:
        server: EtcdServer = request.getfixturevalue("etcd_server")
        store = await EtcdKV.open(server.address)
        await store.delete_prefix("")
    yield store
    await store.close()


@pytest.fixture(params=["local", "gcs", "s3", "azure"])
async def block_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlockStore]:
    store: BlockStore
    bucket = f"test-{uuid.uuid4().hex[:12]}"
    if request.param == "local":
        store = LocalBlockStore(tmp_path / "objects")
    elif request.param == "gcs":
        emulator: GcsEmulator = request.getfixturevalue("gcs_emulator")
        emulator.create_bucket(bucket)
        store = GcsBlockStore(bucket, emulator.client())
    elif request.param == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        s3.create_bucket(bucket)
        store = S3BlockStore(bucket, s3.client())
    else:
        azurite: Azurite = request.getfixturevalue("azurite")
        azurite.create_container(bucket)
        store = AzureBlockStore(azurite.client(bucket))
    yield store
    await store.close()
