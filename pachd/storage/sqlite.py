"""SqliteKV: the embedded metadata store, an etcd-shaped KV in one SQLite file.

One process owns the file. Every SQLite call runs on a single worker thread
(connections are not thread-safe), awaited from the event loop. The store
keeps etcd's model: one revision counter bumped by every write, per-key
create/mod revisions and versions, and an event log from which watches
replay history before following live changes. Live changes reach each watch
in memory, handed over by the write that made them, and only the watches
whose prefix they fall under: a write costs no watch a query of its own
(a store with dozens of watches, one per pipeline and waiting call, would
otherwise queue a read per watch behind every write on the one thread).

WAL with synchronous=FULL: a write that returned survives kill -9 of pachd
and a machine crash.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pachd.errors import Compacted, DiskFull, InvalidArgument, StorageError
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

T = TypeVar("T")

KEEP_EVENTS = 100_000
"""Revisions of history kept for watches; older start revisions get Compacted."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key BLOB PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS events (
    rev INTEGER NOT NULL, seq INTEGER NOT NULL, key BLOB NOT NULL, type INTEGER NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl REAL NOT NULL, expires REAL NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compacted', 0);
"""


@dataclass(eq=False)
class _Watcher:
    """A live watch: the events under its prefix handed over since it last looked."""

    prefix: str
    events: deque[Event] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class _Lease:
    def __init__(self, store: SqliteKV, lease_id: int) -> None:
        self._store = store
        self._id = lease_id

    @property
    def id(self) -> int:
        return self._id

    async def refresh(self) -> None:
        await self._store._refresh_lease(self._id)

    async def revoke(self) -> None:
        await self._store._revoke_lease(self._id)


class SqliteKV:
    max_txn_ops = 10_000

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        self._watchers: set[_Watcher] = set()
        self._watched: tuple[str, ...] = ()  # their prefixes, read by the worker thread as it writes
        self._expiry: asyncio.Task[None] | None = None
        self._lease_changed = asyncio.Event()

    @classmethod
    async def open(cls, path: Path) -> SqliteKV:
        store = cls(path)
        await store._call(store._open)
        store._expiry = asyncio.create_task(store._expire_leases(), name="sqlite-lease-expiry")
        return store

    def _open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db

    async def _call(self, fn: Callable[[], T]) -> T:
        return await self._result(self._pool.submit(fn))

    async def _result(self, done: concurrent.futures.Future[T]) -> T:
        try:
            return await asyncio.wrap_future(done)
        except sqlite3.Error as err:
            if getattr(err, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise DiskFull(f"no space left on device for the metadata store {self._path}") from err
            raise StorageError(f"metadata store {self._path} failed: {err}") from err

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StorageError("the metadata store is closed")
        return self._db

    def _current_revision(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
        return int(row[0])

    # -- reading ------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        def read() -> KeyValue | None:
            row = self._conn.execute(
                "SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key = ?", (key.encode(),)
            ).fetchone()
            return _row(row) if row else None

        return await self._call(read)

    async def range(self, prefix: str, *, start: str | None = None, limit: int = 0) -> RangeResult:
        low = (start or prefix).encode()
        high = prefix_end(prefix.encode())

        def read() -> RangeResult:
            sql = "SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key >= ?"
            args: list[object] = [low]
            if high is not None:
                sql += " AND key < ?"
                args.append(high)
            sql += " ORDER BY key"
            if limit > 0:
                sql += " LIMIT ?"
                args.append(limit)
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(sql, args).fetchall()
                revision = self._current_revision()
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
            return RangeResult([_row(r) for r in rows], revision)

        return await self._call(read)

    async def revision(self) -> int:
        return await self._call(self._current_revision)

    # -- writing ------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        return (await self.txn([], [Put(key, value, lease)])).revision

    async def delete(self, key: str) -> bool:
        existed = await self.get(key) is not None
        await self.txn([], [Delete(key)])
        return existed

    async def delete_prefix(self, prefix: str) -> int:
        count = len((await self.range(prefix)).kvs)
        await self.txn([], [DeletePrefix(prefix)])
        return count

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        if max(len(success), len(failure)) > self.max_txn_ops:
            raise InvalidArgument(f"a transaction may hold at most {self.max_txn_ops} operations")
        loop = asyncio.get_running_loop()
        done = self._pool.submit(self._txn, compares, success, failure)
        # Handed to the watches from the worker's completion, in commit order, whether or not
        # the caller is still waiting (a cancelled caller's write is committed all the same).
        done.add_done_callback(lambda _: self._schedule_hand_over(loop, done))
        result, _ = await self._result(done)
        return result

    def _schedule_hand_over(self, loop: asyncio.AbstractEventLoop,
                            done: concurrent.futures.Future[tuple[TxnResult, list[Event]]]) -> None:
        try:
            loop.call_soon_threadsafe(self._hand_over, done)
        except RuntimeError:  # the loop has closed: no watch is left to hand it to
            pass

    def _txn(self, compares: Sequence[Compare], success: Sequence[Op],
             failure: Sequence[Op]) -> tuple[TxnResult, list[Event]]:
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        events: list[Event] = []
        try:
            held = all(self._mod_rev(c.key) == c.mod_revision for c in compares)
            ops = success if held else failure
            revision = self._current_revision()
            if ops:
                revision, events = self._apply(revision + 1, ops)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:  # SQLite itself rolls back after some errors (a full disk)
                db.execute("ROLLBACK")
            raise
        return TxnResult(held, revision), events

    def _hand_over(self, done: concurrent.futures.Future[tuple[TxnResult, list[Event]]]) -> None:
        """Gives a committed write's events to the watches under whose prefix they fall."""
        if done.cancelled() or done.exception() is not None:
            return
        _, events = done.result()
        for watcher in self._watchers:
            mine = [event for event in events if event.key.startswith(watcher.prefix)]
            if mine:
                watcher.events.extend(mine)
                watcher.arrived.set()

    def _mod_rev(self, key: str) -> int:
        row = self._conn.execute("SELECT mod_rev FROM kv WHERE key = ?", (key.encode(),)).fetchone()
        return int(row[0]) if row else 0

    def _apply(self, revision: int, ops: Sequence[Op]) -> tuple[int, list[Event]]:
        """Applies ops at `revision`; returns the store revision afterwards and the events made
        under a watched prefix (every event goes to the log; see _delete_range)."""
        db = self._conn
        watched = self._watched  # the prefixes watched as this write began (see watch())
        logged: list[tuple[int, int, bytes, int, bytes]] = []
        events: list[Event] = []
        seq = 0
        for op in ops:
            if isinstance(op, Put):
                key = op.key.encode()
                db.execute(
                    "INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, 1, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, "
                    "version = version + 1, lease = excluded.lease",
                    (key, op.value, revision, revision, op.lease),
                )
                logged.append((revision, seq, key, 0, op.value))
                seq += 1
                if op.key.startswith(watched):
                    events.append(Event(EventType.PUT, op.key, op.value, revision))
            elif isinstance(op, Delete):
                if self._mod_rev(op.key):
                    db.execute("DELETE FROM kv WHERE key = ?", (op.key.encode(),))
                    logged.append((revision, seq, op.key.encode(), 1, b""))
                    seq += 1
                    if op.key.startswith(watched):
                        events.append(Event(EventType.DELETE, op.key, b"", revision))
            else:
                seq = self._delete_range(revision, seq, op.prefix, watched, events)
        if not seq:
            return revision - 1, []  # nothing changed: no new revision
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", logged)
        db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (revision,))
        if revision % 1000 == 0:
            self._compact(revision - KEEP_EVENTS)
        return revision, events

    def _delete_range(self, revision: int, seq: int, prefix: str, watched: tuple[str, ...],
                      events: list[Event]) -> int:
        """Deletes every key under `prefix`, logging their events from `seq` on inside SQLite (a
        commit's pending diffs can number millions: nothing per key is held in Python but the
        events of watched keys, added to `events`); returns the next seq."""
        low = prefix.encode()
        high = prefix_end(low)
        where, args = ("key >= ? AND key < ?", (low, high)) if high is not None else ("key >= ?", (low,))
        seen: set[bytes] = set()
        for other in watched:
            seen.update(self._keys_under(other.encode(), low, high))
        events.extend(Event(EventType.DELETE, key.decode(), b"", revision) for key in sorted(seen))
        count = self._conn.execute(
            f"INSERT INTO events SELECT ?, ? + row_number() OVER (ORDER BY key) - 1, key, 1, x'' FROM kv WHERE {where}",
            (revision, seq, *args)).rowcount
        self._conn.execute(f"DELETE FROM kv WHERE {where}", args)
        return seq + count

    def _keys_under(self, watched: bytes, low: bytes, high: bytes | None) -> list[bytes]:
        """The keys under both prefix `watched` and [low, high)."""
        start = max(low, watched)
        ends = [end for end in (high, prefix_end(watched)) if end is not None]
        end = min(ends) if ends else None
        if end is not None and start >= end:
            return []
        sql, args = "SELECT key FROM kv WHERE key >= ?", [start]
        if end is not None:
            sql += " AND key < ?"
            args.append(end)
        return [bytes(r[0]) for r in self._conn.execute(sql, args).fetchall()]

    def _compact(self, below: int) -> None:
        if below > 0:
            self._conn.execute("DELETE FROM events WHERE rev < ?", (below,))
            self._conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (below - 1,))

    # -- watching -----------------------------------------------------------------

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[Event]:
        """History from the event log, then the writes' events as they are handed over.

        The watch is registered before its history is read (both in turn on
        the one thread), so every write is in the history or handed over or
        both; what the history already held is dropped by its revision.
        """
        low = prefix.encode()
        high = prefix_end(low)
        following = start_revision

        def read() -> tuple[list[Event], int]:
            """Events from `following` on, and the revision they run up to."""
            compacted = int(self._conn.execute("SELECT value FROM meta WHERE name = 'compacted'").fetchone()[0])
            if following <= compacted:
                raise Compacted(f"revision {following} is compacted (history starts at {compacted + 1})")
            sql = "SELECT rev, key, type, value FROM events WHERE rev >= ? AND key >= ?"
            args: list[object] = [following, low]
            if high is not None:
                sql += " AND key < ?"
                args.append(high)
            rows = self._conn.execute(sql + " ORDER BY rev, seq", args).fetchall()
            events = [Event(EventType.PUT if t == 0 else EventType.DELETE, bytes(k).decode(), bytes(v), r)
                      for r, k, t, v in rows]
            return events, self._current_revision()

        watcher = _Watcher(prefix)
        self._watchers.add(watcher)
        self._watched = tuple({w.prefix for w in self._watchers})
        try:
            events, upto = await self._call(read)
            for event in events:
                yield event
            following = max(following, upto + 1)
            while True:
                await watcher.arrived.wait()
                watcher.arrived.clear()
                while watcher.events:
                    event = watcher.events.popleft()
                    if event.mod_revision >= following:
                        following = event.mod_revision
                        yield event
        finally:
            self._watchers.discard(watcher)
            self._watched = tuple({w.prefix for w in self._watchers})

    # -- leases -------------------------------------------------------------------

    async def grant_lease(self, ttl: float) -> _Lease:
        def grant() -> int:
            cursor = self._conn.execute("INSERT INTO leases (ttl, expires) VALUES (?, ?)", (ttl, time.time() + ttl))
            return int(cursor.lastrowid or 0)

        lease = _Lease(self, await self._call(grant))
        self._lease_changed.set()
        return lease

    async def _refresh_lease(self, lease_id: int) -> None:
        def refresh() -> int:
            return self._conn.execute(
                "UPDATE leases SET expires = ? + ttl WHERE id = ? AND expires > ?", (time.time(), lease_id, time.time())
            ).rowcount

        if await self._call(refresh) == 0:
            raise StorageError(f"lease {lease_id} has expired")
        self._lease_changed.set()

    async def _revoke_lease(self, lease_id: int) -> None:
        keys = await self._call(lambda: [bytes(r[0]).decode() for r in self._conn.execute(
            "SELECT key FROM kv WHERE lease = ?", (lease_id,)).fetchall()])
        await self._call(lambda: self._conn.execute("DELETE FROM leases WHERE id = ?", (lease_id,)))
        if keys:
            await self.txn([], [Delete(k) for k in keys])

    async def _expire_leases(self) -> None:
        """Revokes each lease at its expiry time (a timer per earliest expiry, not polling)."""
        while True:
            self._lease_changed.clear()
            rows = await self._call(lambda: self._conn.execute("SELECT id, expires FROM leases").fetchall())
            now = time.time()
            for lease_id, expires in rows:
                if expires <= now:
                    await self._revoke_lease(int(lease_id))
            pending = [float(e) - now for _, e in rows if float(e) > now]
            try:
                await asyncio.wait_for(self._lease_changed.wait(), min(pending) if pending else None)
            except TimeoutError:
                pass

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            await asyncio.gather(self._expiry, return_exceptions=True)
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._pool, db.close)
        self._pool.shutdown(wait=True)


def _row(row: tuple[bytes, bytes, int, int, int]) -> KeyValue:
    key, value, create_rev, mod_rev, version = row
    return KeyValue(bytes(key).decode(), bytes(value), int(create_rev), int(mod_rev), int(version))
