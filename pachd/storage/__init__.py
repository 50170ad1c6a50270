"""Storage: the metadata KV store and the block store, each with two backends."""

from __future__ import annotations

from pachd.config import PachdConfig
from pachd.storage.blocks import BlockStore
from pachd.storage.kv import KV


async def open_kv(config: PachdConfig) -> KV:
    """etcd when an address is configured, else the embedded SQLite store."""
    if config.uses_etcd:
        from pachd.storage.etcd import EtcdKV

        return await EtcdKV.open(config.etcd_address)
    from pachd.storage.sqlite import SqliteKV

    return await SqliteKV.open(config.data_dir / "meta.db")


async def open_block_store(config: PachdConfig) -> BlockStore:
    """GCS when configured, else files under the data dir."""
    if config.storage == "gcs":
        from pachd.storage.gcs import GcsBlockStore

        return GcsBlockStore(config.gcs_bucket)
    from pachd.storage.localdisk import LocalBlockStore

    return LocalBlockStore(config.data_dir / "objects")
