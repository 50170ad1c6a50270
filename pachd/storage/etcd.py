"""EtcdKV: the metadata store in etcd v3, through aetcd's client and messages.

Ranges are read page by page at one pinned revision, so a long listing is
still one consistent snapshot. A watch is its own gRPC stream; when the
stream breaks (etcd restarted), it is opened again from the revision after
the last event seen, so callers see no gap and no repeat. Every failure of
etcd becomes StorageError; calls wait up to CALL_TIMEOUT for etcd (so a short
restart is ridden out), watches keep reconnecting for RECONNECT_FOR before
they give up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence

import aetcd
import grpc
from aetcd import rpc

from pachd.errors import Compacted, InvalidArgument, StorageError, TooLarge
from pachd.storage.kv import (
    Compare,
    Delete,
    DeletePrefix,
    Event,
    EventType,
    KeyValue,
    Op,
    Put,
    RangeResult,
    TxnResult,
    prefix_end,
)

logger = logging.getLogger(__name__)

CALL_TIMEOUT = 10.0
RECONNECT_FOR = 60.0
PAGE = 1000
# Reconnect quickly after etcd comes back (gRPC's default backoff grows to two minutes).
CHANNEL_OPTIONS = {
    "grpc.initial_reconnect_backoff_ms": 100,
    "grpc.min_reconnect_backoff_ms": 100,
    "grpc.max_reconnect_backoff_ms": 1000,
}


def range_start(prefix: bytes) -> bytes:
    """etcd refuses an empty key; b"\\0" starts at the first key."""
    return prefix or b"\0"


def range_end(prefix: bytes) -> bytes:
    """etcd's range_end for a prefix; b"\\0" means every key from the start."""
    return prefix_end(prefix) or b"\0"


class _Lease:
    def __init__(self, lease: aetcd.Lease) -> None:
        self._lease = lease

    @property
    def id(self) -> int:
        return int(self._lease.id)

    async def refresh(self) -> None:
        try:
            responses = await self._lease.refresh()
        except (aetcd.ClientError, grpc.RpcError) as err:
            raise StorageError(f"refreshing lease {self.id} failed: {err}") from err
        if responses is None or responses.TTL <= 0:
            raise StorageError(f"lease {self.id} has expired")

    async def revoke(self) -> None:
        try:
            await self._lease.revoke()
        except (aetcd.ClientError, grpc.RpcError) as err:
            raise StorageError(f"revoking lease {self.id} failed: {err}") from err


class EtcdKV:
    max_txn_ops = 128  # etcd's default --max-txn-ops

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._address = address
        self._client = aetcd.Client(host=host or "127.0.0.1", port=int(port or 2379), timeout=int(CALL_TIMEOUT),
                                    options=CHANNEL_OPTIONS)
        self._kv: rpc.KVStub | None = None
        self._watch: rpc.WatchStub | None = None

    @classmethod
    async def open(cls, address: str) -> EtcdKV:
        store = cls(address)
        try:
            await store._client.connect()
        except (aetcd.ClientError, grpc.RpcError, OSError) as err:
            raise StorageError(f"cannot connect to etcd at {address}: {err}") from err
        store._kv = rpc.KVStub(store._client.channel)
        store._watch = rpc.WatchStub(store._client.channel)
        return store

    @property
    def _stub(self) -> rpc.KVStub:
        if self._kv is None:
            raise StorageError("the etcd store is closed")
        return self._kv

    def _failed(self, what: str, err: Exception) -> StorageError:
        return StorageError(f"etcd at {self._address}: {what} failed: {err}")

    # -- reading ------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        try:
            response = await self._stub.Range(rpc.RangeRequest(key=key.encode()), timeout=CALL_TIMEOUT,
                                              wait_for_ready=True)
        except grpc.RpcError as err:
            raise self._failed("get", err) from err
        return _kv(response.kvs[0]) if response.kvs else None

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        low = range_start((start or prefix).encode())
        end = range_end(prefix.encode())
        kvs: list[KeyValue] = []
        revision = 0
        while True:
            page = PAGE if limit <= 0 else min(PAGE, limit - len(kvs))
            request = rpc.RangeRequest(key=low, range_end=end, limit=page, revision=revision)
            try:
                response = await self._stub.Range(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
            except grpc.RpcError as err:
                if err.code() == grpc.StatusCode.OUT_OF_RANGE:
                    raise Compacted(f"etcd compacted revision {revision} during a listing; list again") from err
                raise self._failed("range", err) from err
            revision = revision or response.header.revision
            kvs.extend(_kv(kv) for kv in response.kvs)
            if not response.more or (limit > 0 and len(kvs) >= limit) or not response.kvs:
                return RangeResult(kvs, revision)
            low = response.kvs[-1].key + b"\0"

    async def revision(self) -> int:
        try:
            response = await self._stub.Range(rpc.RangeRequest(key=b"\0", limit=1), timeout=CALL_TIMEOUT,
                                              wait_for_ready=True)
        except grpc.RpcError as err:
            raise self._failed("revision", err) from err
        return int(response.header.revision)

    # -- writing ------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def delete(self, key: str) -> bool:
        try:
            response = await self._stub.DeleteRange(rpc.DeleteRangeRequest(key=key.encode()), timeout=CALL_TIMEOUT,
                                                    wait_for_ready=True)
        except grpc.RpcError as err:
            raise self._failed("delete", err) from err
        return int(response.deleted) > 0

    async def delete_prefix(self, prefix: str) -> int:
        request = rpc.DeleteRangeRequest(key=range_start(prefix.encode()), range_end=range_end(prefix.encode()))
        try:
            response = await self._stub.DeleteRange(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        except grpc.RpcError as err:
            raise self._failed("delete", err) from err
        return int(response.deleted)

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        if max(len(success), len(failure)) > self.max_txn_ops:
            raise InvalidArgument(f"a transaction may hold at most {self.max_txn_ops} operations")
        request = rpc.TxnRequest(
            compare=[
                rpc.Compare(key=c.key.encode(), result=rpc.Compare.EQUAL, target=rpc.Compare.MOD,
                            mod_revision=c.mod_revision)
                for c in compares
            ],
            success=[_request_op(op) for op in success],
            failure=[_request_op(op) for op in failure],
        )
        try:
            response = await self._stub.Txn(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument(f"etcd refused a transaction: {err.details()}") from err
            if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise TooLarge(f"a metadata change of {request.ByteSize()} bytes is over etcd's request size "
                               f"limit ({err.details()}); make the record smaller") from err
            raise self._failed("txn", err) from err
        return TxnResult(bool(response.succeeded), int(response.header.revision))

    # -- watching -----------------------------------------------------------------

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        following = start_revision
        broken_since: float | None = None
        while True:
            try:
                async for event in self._stream(prefix, following):
                    broken_since = None
                    following = event.mod_revision + 1
                    yield event
            except Compacted:
                raise
            except (grpc.RpcError, StorageError) as err:
                now = time.monotonic()
                broken_since = broken_since or now
                if now - broken_since > RECONNECT_FOR:
                    raise self._failed("watch", err) from err
                logger.debug("etcd watch on %s broke (%s); reconnecting", prefix, err)
                await asyncio.sleep(0.5)

    async def _stream(self, prefix: str, start: int) -> AsyncIterator[Event]:
        if self._watch is None:
            raise StorageError("the etcd store is closed")
        create = rpc.WatchCreateRequest(key=range_start(prefix.encode()), range_end=range_end(prefix.encode()),
                                        start_revision=start)
        requests: asyncio.Queue[rpc.WatchRequest | None] = asyncio.Queue()
        requests.put_nowait(rpc.WatchRequest(create_request=create))

        async def outgoing() -> AsyncIterator[rpc.WatchRequest]:
            while (request := await requests.get()) is not None:
                yield request

        call = self._watch.Watch(outgoing())
        try:
            async for response in call:
                if response.compact_revision:
                    raise Compacted(f"etcd has compacted history up to revision {response.compact_revision}")
                if response.canceled:
                    raise StorageError(f"etcd cancelled the watch on {prefix}: {response.cancel_reason}")
                for ev in response.events:
                    kind = EventType.DELETE if ev.type == rpc.Event.DELETE else EventType.PUT
                    yield Event(kind, ev.kv.key.decode(), ev.kv.value if kind is EventType.PUT else b"",
                                int(ev.kv.mod_revision))
            raise StorageError(f"etcd closed the watch on {prefix}")
        finally:
            requests.put_nowait(None)
            call.cancel()

    # -- leases -------------------------------------------------------------------

    async def grant_lease(self, ttl: float) -> _Lease:
        try:
            lease = await self._client.lease(max(1, round(ttl)))
        except (aetcd.ClientError, grpc.RpcError) as err:
            raise self._failed("lease grant", err) from err
        return _Lease(lease)

    async def close(self) -> None:
        self._kv = self._watch = None
        await self._client.close()


def _kv(kv: rpc.KeyValue) -> KeyValue:
    return KeyValue(kv.key.decode(), bytes(kv.value), int(kv.create_revision), int(kv.mod_revision), int(kv.version))


def _request_op(op: Op) -> rpc.RequestOp:
    if isinstance(op, Put):
        return rpc.RequestOp(request_put=rpc.PutRequest(key=op.key.encode(), value=op.value, lease=op.lease))
    if isinstance(op, Delete):
        return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=op.key.encode()))
    prefix = op.prefix.encode()
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=range_start(prefix),
                                                                     range_end=range_end(prefix)))
