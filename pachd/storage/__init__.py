"""Storage: the metadata KV store (SQLite, etcd) and the block store (local, GCS, S3, Azure)."""

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
    """The configured cloud store (GCS, S3, Azure), else files under the data dir."""
    if config.storage == "gcs":
        from pachd.storage.gcs import GcsBlockStore

        return GcsBlockStore(config.gcs_bucket)
    if config.storage == "s3":
        from pachd.storage.s3 import S3BlockStore, s3_client

        client = s3_client(region=config.s3_region, endpoint=config.s3_endpoint, access_key=config.s3_access_key,
                           secret_key=config.s3_secret_key, session_token=config.s3_session_token)
        return S3BlockStore(config.s3_bucket, client)
    if config.storage == "azure":
        from pachd.storage.azure import AzureBlockStore, container_client

        return AzureBlockStore(container_client(container=config.azure_container, account=config.azure_account,
                                                key=config.azure_key, endpoint=config.azure_endpoint))
    from pachd.storage.localdisk import LocalBlockStore

    return LocalBlockStore(config.data_dir / "objects")
