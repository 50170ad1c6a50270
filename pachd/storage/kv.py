"""The metadata store contract: an etcd-shaped key-value store.

Two backends implement it: `pachd.storage.sqlite.SqliteKV` (embedded, one
process) and `pachd.storage.etcd.EtcdKV` (etcd v3 through aetcd). Everything
above this module uses only what is declared here, and one conformance suite
(tests/storage/test_kv.py) runs against both.

Keys are str (stored as UTF-8; ordering is byte order of that encoding).
Values are bytes. Every change bumps one store-wide revision, as in etcd.
Key layout belongs to each domain's keys.py; never build keys inline.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One stored key with its value and revisions (as etcd reports them)."""

    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    """Keys read in one consistent snapshot, and the revision of that snapshot.

    Watching from `revision + 1` sees every change made after the snapshot.
    """

    kvs: list[KeyValue]
    revision: int


@dataclass(frozen=True, slots=True)
class Compare:
    """A transaction guard: the key's mod_revision must equal `mod_revision`.

    `mod_revision=0` means the key must not exist.
    """

    key: str
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Put:
    """Write `value` at `key`; with `lease`, the key dies with that lease."""

    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete `key` (no error if it is absent)."""

    key: str


@dataclass(frozen=True, slots=True)
class DeletePrefix:
    """Delete every key that starts with `prefix`."""

    prefix: str


Op = Put | Delete | DeletePrefix


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key above every key that starts with `prefix` (None: no such bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


@dataclass(frozen=True, slots=True)
class TxnResult:
    """Whether the compares held (so `success` ran) and the revision after."""

    succeeded: bool
    revision: int


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    """One change seen by a watch. For DELETE, `value` is empty."""

    type: EventType
    key: str
    value: bytes
    mod_revision: int


class Lease(Protocol):
    """A time-to-live that keys can be attached to (etcd leases)."""

    @property
    def id(self) -> int:
        """The lease ID to pass as `Put(lease=...)`."""

    async def refresh(self) -> None:
        """Restart the TTL. Raises StorageError if the lease already expired."""

    async def revoke(self) -> None:
        """End the lease now, deleting its keys."""


class KV(Protocol):
    """An etcd-shaped metadata store.

    All methods raise `pachd.errors.StorageError` when the backend fails;
    nothing else escapes them, except the request errors `txn` names.
    """

    max_txn_ops: int
    """The most operations one txn may hold (etcd's default is 128)."""

    async def get(self, key: str) -> KeyValue | None:
        """The key's current value, or None when absent."""

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        """Keys starting with `prefix`, in key order, from one snapshot.

        With `start`, only keys >= start (start must itself have the prefix).
        With `limit` > 0, at most that many keys.
        """

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Write unconditionally; returns the new store revision."""

    async def delete(self, key: str) -> bool:
        """Delete one key; True if it existed."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key with the prefix; returns how many went."""

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        """Atomically: if every compare holds run `success`, else `failure`.

        Raises InvalidArgument if the ops exceed `max_txn_ops`, and TooLarge
        if they exceed the backend's request size limit (etcd: 1.5 MiB).
        """

    async def revision(self) -> int:
        """The current store revision."""

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        """Every change to keys with `prefix`, from `start_revision` (inclusive) on.

        Events arrive in revision order and none is skipped. The iterator runs
        until the caller stops iterating (breaks, or its task is cancelled).
        Raises Compacted if `start_revision` is older than the kept history.
        """

    async def grant_lease(self, ttl: float) -> Lease:
        """A new lease that expires `ttl` seconds after its last refresh."""

    async def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
