"""AzureBlockStore: immutable objects as block blobs in a Microsoft Azure Storage container.

Uses Microsoft's own SDK, azure-storage-blob, through its synchronous client,
so every call runs in a worker thread. The account is named by its name and
key (Shared Key authentication); `endpoint` replaces the account's public
URL, for Azure's other clouds or the Azurite emulator
(http://127.0.0.1:10000/devstoreaccount1).

A block of up to 64 MiB is one Put Blob request whose body streams from
memory; Azure makes a blob visible only when the request completes, so a
failed or cut upload leaves nothing behind (a larger object is staged as
uncommitted blocks and appears whole when its block list is committed).
`overwrite=False` makes the write create-only. azure-core's exponential retry
policy retries throttling (503 ServerBusy, 500 OperationTimedOut), other
transient errors and broken connections before StorageError is reported.
"""

from __future__ import annotations

import asyncio
import builtins
import shutil
import tempfile
import uuid
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from typing import TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from pachd.errors import BlockNotFound, StorageError
from pachd.storage.blocks import DurableBatch, ObjectInfo, WriteBatch, empty_folder

T = TypeVar("T")

CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
RETRIES = 5  # after the first attempt; backoff 1, 3, 5, 9, 17 s (with jitter), about 35 s in all
SINGLE_PUT_BYTES = 64 << 20


def retry_policy(retries: int = RETRIES) -> ExponentialRetry:
    return ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=retries, random_jitter_range=1)


def account_url(account: str, endpoint: str = "") -> str:
    """The blob service's URL: `endpoint` as given, else the account's public one."""
    return endpoint.rstrip("/") if endpoint else f"https://{account}.blob.core.windows.net"


def container_client(*, container: str, account: str, key: str, endpoint: str = "",
                     retries: int = RETRIES) -> ContainerClient:
    """A client of `container` in `account`, authenticated with the account key."""
    service = BlobServiceClient(
        account_url(account, endpoint),
        credential={"account_name": account, "account_key": key},
        retry_policy=retry_policy(retries),
        connection_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        max_single_put_size=SINGLE_PUT_BYTES,
    )
    return service.get_container_client(container)


class AzureBlockStore:
    def __init__(self, client: ContainerClient) -> None:
        self._client = client
        self._name = client.container_name
        self._spill = Path(tempfile.mkdtemp(prefix="pachd-azure-"))  # large uploads wait here, this process's own

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except ResourceNotFoundError as err:
            raise BlockNotFound(f"{what}: not found in container {self._name}") from err
        except (AzureError, OSError, ValueError) as err:
            raise StorageError(f"{what} in container {self._name} failed: {err}") from err

    async def put(self, name: str, data: bytes) -> None:
        blob = self._client.get_blob_client(name)

        def upload() -> None:
            try:
                blob.upload_blob(data, blob_type="BlockBlob", length=len(data), overwrite=False, max_concurrency=1)
            except ResourceExistsError:
                self._renew(name)  # names are content hashes: it holds these bytes; it counts as written now

        await self._run(f"writing {name}", upload)

    def batch(self) -> WriteBatch:
        return DurableBatch(self)

    readahead = None  # its temporary files are uploaded, then removed: nothing to read back

    def temporary(self) -> Path:
        return self._spill / uuid.uuid4().hex

    async def ensure_room(self, size: int) -> None:
        return None  # a container does not fill up

    async def put_from(self, name: str, source: Path) -> None:
        blob = self._client.get_blob_client(name)

        def upload() -> None:
            try:
                with open(source, "rb") as stream:
                    blob.upload_blob(stream, blob_type="BlockBlob", length=source.stat().st_size, overwrite=False,
                                     max_concurrency=1)
            except ResourceExistsError:
                self._renew(name)

        try:
            await self._run(f"writing {name}", upload)
        finally:
            source.unlink(missing_ok=True)

    def _renew(self, name: str) -> bool:
        # Setting metadata moves the blob's Last-Modified time and its ETag, which makes a
        # concurrent delete_if_older (conditional on the ETag) fail.
        try:
            self._client.get_blob_client(name).set_blob_metadata({"renewed": str(int(datetime.now(timezone.utc).timestamp()))})
            return True
        except ResourceNotFoundError:
            return False

    async def renew(self, name: str) -> bool:
        return await self._run(f"renewing {name}", lambda: self._renew(name))

    async def delete_if_older(self, name: str, cutoff: datetime) -> bool:
        blob = self._client.get_blob_client(name)

        def delete() -> bool:
            try:
                properties = blob.get_blob_properties()
                if properties.last_modified >= cutoff:
                    return False
                blob.delete_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
                return True
            except (ResourceNotFoundError, ResourceModifiedError):
                return False

        return await self._run(f"deleting {name}", delete)

    async def sweep(self) -> int:
        return await asyncio.to_thread(empty_folder, self._spill)  # uploads themselves are atomic

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        blob = self._client.get_blob_client(name)

        def download() -> bytes:
            try:
                return blob.download_blob(offset=offset, length=size or None, max_concurrency=1).readall()
            except HttpResponseError as err:
                if err.status_code != 416:
                    raise
                blob.get_blob_properties()  # ResourceNotFoundError when missing
                return b""  # reading past the end

        return await self._run(f"reading {name}", download)

    async def exists(self, name: str) -> bool:
        blob = self._client.get_blob_client(name)
        return await self._run(f"checking {name}", lambda: bool(blob.exists()))

    async def stat(self, name: str) -> ObjectInfo:
        blob = self._client.get_blob_client(name)

        def fetch() -> ObjectInfo:
            props = blob.get_blob_properties()
            return ObjectInfo(name, int(props.size), props.creation_time or datetime.now(timezone.utc))

        return await self._run(f"inspecting {name}", fetch)

    async def delete(self, name: str) -> None:
        blob = self._client.get_blob_client(name)

        def remove() -> None:
            try:
                blob.delete_blob()
            except ResourceNotFoundError:
                pass

        await self._run(f"deleting {name}", remove)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def fetch() -> builtins.list[ObjectInfo]:
            return [ObjectInfo(item.name, int(item.size), item.creation_time or datetime.now(timezone.utc))
                    for item in self._client.list_blobs(name_starts_with=prefix or None)]

        for info in sorted(await self._run("listing", fetch), key=lambda i: i.name):
            yield info

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
        await asyncio.to_thread(shutil.rmtree, self._spill, True)

