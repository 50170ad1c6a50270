"""S3BlockStore: immutable objects in an Amazon S3 bucket, or any store speaking S3's API.

Uses AWS's own SDK, boto3, whose client is synchronous, so every call runs in
a worker thread. Credentials and the region come from the standard AWS chain
(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN,
~/.aws/credentials and ~/.aws/config, an instance or pod role) unless given;
`endpoint` points it at an S3-compatible store (MinIO, Ceph's RADOS Gateway),
addressed path-style as those expect.

A block is one PutObject request whose body streams from memory: S3 makes an
object visible only once the whole body has arrived and matched its
checksum, so a failed or cut upload leaves nothing behind. `If-None-Match: *`
makes the write create-only; a store that ignores the header overwrites the
object with the same bytes, which is as good. botocore's "standard" retry
mode retries throttling (SlowDown, 503), transient server errors and broken
connections with exponential backoff before StorageError is reported.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import shutil
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pachd.errors import BlockNotFound, StorageError
from pachd.storage.blocks import DurableBatch, ObjectInfo, WriteBatch, empty_folder

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client
else:
    S3Client = Any

T = TypeVar("T")

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
# Attempts per request, the first included; standard mode backs off
# exponentially (with jitter, at most 20 s apart) between them.
MAX_ATTEMPTS = 6

_MISSING = {"NoSuchKey", "NotFound", "404"}
_ALREADY_THERE = {"PreconditionFailed", "ConditionalRequestConflict", "412"}


def s3_client(*, region: str = "", endpoint: str = "", access_key: str = "", secret_key: str = "",
              session_token: str = "", max_attempts: int = MAX_ATTEMPTS) -> S3Client:
    """A boto3 S3 client; empty arguments are left to the standard AWS chain."""
    config = Config(
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        s3={"addressing_style": "path"} if endpoint else None,
        # A store that is not AWS may not know the newer checksum headers.
        request_checksum_calculation="when_required" if endpoint else "when_supported",
        response_checksum_validation="when_required" if endpoint else "when_supported",
    )
    session = boto3.session.Session(
        aws_access_key_id=access_key or None,
        aws_secret_access_key=secret_key or None,
        aws_session_token=session_token or None,
        region_name=region or None,
    )
    return session.client("s3", endpoint_url=endpoint or None, config=config)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class S3BlockStore:
    def __init__(self, bucket: str, client: S3Client) -> None:
        self._client = client
        self._bucket = bucket
        self._spill = Path(tempfile.mkdtemp(prefix="pachd-s3-"))  # large uploads wait here, this process's own

    async def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(fn)
        except ClientError as err:
            if _code(err) in _MISSING:
                raise BlockNotFound(f"{what}: not found in bucket {self._bucket}") from err
            raise StorageError(f"{what} in bucket {self._bucket} failed: {err}") from err
        except (BotoCoreError, OSError) as err:
            raise StorageError(f"{what} in bucket {self._bucket} failed: {err}") from err

    async def put(self, name: str, data: bytes) -> None:
        await self._run(f"writing {name}", lambda: self._upload(name, lambda: io.BytesIO(data), len(data)))

    def _upload(self, name: str, body: Callable[[], BinaryIO], size: int) -> None:
        try:
            with body() as stream:
                self._client.put_object(Bucket=self._bucket, Key=name, Body=stream, ContentLength=size,
                                        IfNoneMatch="*")
        except ClientError as err:
            if _code(err) == "NotImplemented":  # a store without conditional writes: same bytes anyway
                with body() as stream:
                    self._client.put_object(Bucket=self._bucket, Key=name, Body=stream, ContentLength=size)
            elif _code(err) in _ALREADY_THERE:
                self._renew(name)  # names are content hashes: it holds these bytes; it counts as written now
            else:
                raise

    def batch(self) -> WriteBatch:
        return DurableBatch(self)

    readahead = None  # its temporary files are uploaded, then removed: nothing to read back

    def temporary(self) -> Path:
        return self._spill / uuid.uuid4().hex

    async def ensure_room(self, size: int) -> None:
        return None  # a bucket does not fill up

    async def put_from(self, name: str, source: Path) -> None:
        try:
            size = source.stat().st_size
            await self._run(f"writing {name}", lambda: self._upload(name, lambda: open(source, "rb"), size))
        finally:
            source.unlink(missing_ok=True)

    def _renew(self, name: str) -> bool:
        # S3 objects cannot be touched: copying one onto itself with new metadata moves its LastModified.
        try:
            self._client.copy_object(Bucket=self._bucket, Key=name, CopySource={"Bucket": self._bucket, "Key": name},
                                     Metadata={"renewed": datetime.now(timezone.utc).isoformat()},
                                     MetadataDirective="REPLACE")
            return True
        except ClientError as err:
            if _code(err) in _MISSING:
                return False
            raise

    async def renew(self, name: str) -> bool:
        return await self._run(f"renewing {name}", lambda: self._renew(name))

    async def delete_if_older(self, name: str, cutoff: datetime) -> bool:
        def delete() -> bool:
            try:
                head = self._client.head_object(Bucket=self._bucket, Key=name)
            except ClientError as err:
                if _code(err) in _MISSING:
                    return False
                raise
            if head["LastModified"] >= cutoff:
                return False
            # S3 has no delete conditional on the modification time of general buckets: the check just
            # made and the delete are not atomic, which the collector's grace period covers.
            self._client.delete_object(Bucket=self._bucket, Key=name)
            return True

        return await self._run(f"deleting {name}", delete)

    async def sweep(self) -> int:
        return await asyncio.to_thread(empty_folder, self._spill)  # uploads themselves are atomic

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        wanted = f"bytes={offset}-{offset + size - 1}" if size > 0 else f"bytes={offset}-"

        def download() -> bytes:
            try:
                reply = self._client.get_object(Bucket=self._bucket, Key=name, Range=wanted)
            except ClientError as err:
                if _code(err) != "InvalidRange":
                    raise
                self._client.head_object(Bucket=self._bucket, Key=name)  # NotFound when missing
                return b""  # reading past the end
            with reply["Body"] as body:
                return body.read()

        return await self._run(f"reading {name}", download)

    async def exists(self, name: str) -> bool:
        try:
            await self.stat(name)
        except BlockNotFound:
            return False
        return True

    async def stat(self, name: str) -> ObjectInfo:
        def fetch() -> ObjectInfo:
            head = self._client.head_object(Bucket=self._bucket, Key=name)
            # S3 keeps no creation time; an object is never rewritten, so its last change is its creation.
            return ObjectInfo(name, int(head["ContentLength"]), head["LastModified"])

        return await self._run(f"inspecting {name}", fetch)

    async def delete(self, name: str) -> None:
        await self._run(f"deleting {name}", lambda: self._client.delete_object(Bucket=self._bucket, Key=name))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        def fetch() -> builtins.list[ObjectInfo]:
            found = []
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append(ObjectInfo(item["Key"], int(item["Size"]), item["LastModified"]))
            return found

        for info in sorted(await self._run("listing", fetch), key=lambda i: i.name):
            yield info

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)
        await asyncio.to_thread(shutil.rmtree, self._spill, True)

