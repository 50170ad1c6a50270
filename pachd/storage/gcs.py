"""GcsBlockStore: immutable objects in a Google Cloud Storage bucket.

Uses the official google-cloud-storage client (synchronous, so every call
runs in a worker thread). STORAGE_EMULATOR_HOST, read by the client library
itself, points it at an emulator. Uploads are single requests, which GCS
makes visible only when complete: a failed upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage

from pachd.errors import BlockNotFound, StorageError
from pachd.storage.blocks import DurableBatch, ObjectInfo, WriteBatch, empty_folder

T = TypeVar("T")

TIMEOUT = 60.0
# Retry transient failures for a while, then report StorageError rather than hang.
RETRY = Retry(initial=0.2, maximum=5.0, multiplier=2.0, timeout=30.0)


class GcsBlockStore:
    def __init__(self, bucket: str, client: storage.Client | None = None) -> None:
        self._client = client or storage.Client()
        self._bucket = self._client.bucket(bucket)
        self._name = bucket
        self._spill = Path(tempfile.mkdtemp(prefix="pachd-gcs-"))  # large uploads wait here, this process's own

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except gexc.NotFound as err:
            raise BlockNotFound(f"{what}: not found in bucket {self._name}") from err
        except (gexc.GoogleAPIError, OSError, ValueError) as err:
            raise StorageError(f"{what} in bucket {self._name} failed: {err}") from err
        except Exception as err:  # requests/urllib3 connection errors have no common base here
            if type(err).__module__.startswith(("requests", "urllib3", "google")):
                raise StorageError(f"{what} in bucket {self._name} failed: {err}") from err
            raise

    async def put(self, name: str, data: bytes) -> None:
        blob = self._bucket.blob(name)

        def upload() -> None:
            try:
                # if_generation_match=0: create only; an existing object is the same bytes.
                blob.upload_from_string(data, if_generation_match=0, timeout=TIMEOUT, retry=RETRY)
            except gexc.PreconditionFailed:
                self._renew(name)

        await self._run(f"writing {name}", upload)

    def batch(self) -> WriteBatch:
        return DurableBatch(self)

    readahead = None  # its temporary files are uploaded, then removed: nothing to read back

    def temporary(self) -> Path:
        return self._spill / uuid.uuid4().hex

    async def ensure_room(self, size: int) -> None:
        return None  # a bucket does not fill up; large uploads check their local spill folder themselves

    async def put_from(self, name: str, source: Path) -> None:
        blob = self._bucket.blob(name)

        def upload() -> None:
            try:
                blob.upload_from_filename(str(source), if_generation_match=0, timeout=TIMEOUT, retry=RETRY)
            except gexc.PreconditionFailed:
                self._renew(name)

        try:
            await self._run(f"writing {name}", upload)
        finally:
            source.unlink(missing_ok=True)

    def _renew(self, name: str) -> bool:
        # A metadata change moves the object's `updated` time and its metageneration,
        # which makes a concurrent delete_if_older (conditional on both) fail.
        blob = self._bucket.blob(name)
        blob.metadata = {"renewed": datetime.now(timezone.utc).isoformat()}
        try:
            blob.patch(timeout=TIMEOUT, retry=RETRY)
            return True
        except gexc.NotFound:
            return False

    async def renew(self, name: str) -> bool:
        return await self._run(f"renewing {name}", lambda: self._renew(name))

    async def delete_if_older(self, name: str, cutoff: datetime) -> bool:
        def delete() -> bool:
            blob = self._bucket.get_blob(name, timeout=TIMEOUT, retry=RETRY)
            if blob is None or _time(blob) >= cutoff:
                return False
            try:
                blob.delete(if_generation_match=blob.generation, if_metageneration_match=blob.metageneration,
                            timeout=TIMEOUT, retry=RETRY)
                return True
            except (gexc.PreconditionFailed, gexc.NotFound):
                return False

        return await self._run(f"deleting {name}", delete)

    async def sweep(self) -> int:
        return await asyncio.to_thread(empty_folder, self._spill)  # uploads themselves are atomic

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        blob = self._bucket.blob(name)
        end = offset + size - 1 if size > 0 else None

        def download() -> bytes:
            try:
                return bytes(blob.download_as_bytes(start=offset, end=end, timeout=TIMEOUT, retry=RETRY))
            except gexc.RequestRangeNotSatisfiable:
                if not blob.exists(timeout=TIMEOUT):
                    raise gexc.NotFound(name) from None  # type: ignore[no-untyped-call]
                return b""  # reading past the end

        return await self._run(f"reading {name}", download)

    async def exists(self, name: str) -> bool:
        blob = self._bucket.blob(name)
        return await self._run(f"checking {name}", lambda: bool(blob.exists(timeout=TIMEOUT, retry=RETRY)))

    async def stat(self, name: str) -> ObjectInfo:
        def fetch() -> ObjectInfo:
            blob = self._bucket.get_blob(name, timeout=TIMEOUT, retry=RETRY)
            if blob is None:
                raise gexc.NotFound(name)  # type: ignore[no-untyped-call]
            return ObjectInfo(name, int(blob.size or 0), _time(blob))

        return await self._run(f"inspecting {name}", fetch)

    async def delete(self, name: str) -> None:
        def remove() -> None:
            try:
                self._bucket.blob(name).delete(timeout=TIMEOUT, retry=RETRY)
            except gexc.NotFound:
                pass

        await self._run(f"deleting {name}", remove)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def fetch() -> list[ObjectInfo]:
            blobs = self._client.list_blobs(self._name, prefix=prefix, timeout=TIMEOUT, retry=RETRY)
            return [ObjectInfo(b.name, int(b.size or 0), _time(b)) for b in blobs]

        for info in sorted(await self._run("listing", fetch), key=lambda i: i.name):
            yield info

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
        await asyncio.to_thread(shutil.rmtree, self._spill, True)


def _time(blob: storage.Blob) -> datetime:
    """When the object was written or last renewed."""
    return blob.updated or blob.time_created or datetime.now(timezone.utc)
