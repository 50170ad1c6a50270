"""SqliteKV's watches: a write reaches the watches in memory, not by a query per watch."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from pachd.storage.kv import DeletePrefix, EventType, Put
from pachd.storage.sqlite import SqliteKV
from tests.storage.test_kv import collect
from tests.support.memory import traced_peak

KEYS = 5000
MARGIN = 1 << 20
"""Bytes a delete of 4 x KEYS keys may hold beyond one of KEYS (per key: some 450 bytes before)."""


async def test_a_write_costs_the_watches_no_query(tmp_path: Path) -> None:
    store = await SqliteKV.open(tmp_path / "meta.db")
    start = await store.revision() + 1
    idle = [asyncio.create_task(collect(store, f"idle/{n}/", start, 1)) for n in range(30)]
    watching = asyncio.create_task(collect(store, "w/", start, 2))
    await store.put("w/first", b"")
    await store.revision()  # queued on the store's one thread after every watch's read of its history
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    await store.put("w/second", b"")
    events = await asyncio.wait_for(watching, 30)
    store._conn.set_trace_callback(None)
    assert [e.key for e in events] == ["w/first", "w/second"]
    assert not [s for s in statements if "FROM events" in s]  # 31 watches: 31 reads of the log before
    for task in idle:
        task.cancel()
    await asyncio.gather(*idle, return_exceptions=True)
    await store.close()


async def test_a_write_whose_caller_was_cancelled_still_reaches_the_watches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = await SqliteKV.open(tmp_path / "meta.db")
    start = await store.revision() + 1
    watching = asyncio.create_task(collect(store, "k/", start, 2))
    await store.put("k/0", b"")
    running, release = threading.Event(), threading.Event()
    original = store._txn

    def held(*args: Any) -> Any:
        running.set()
        release.wait()
        return original(*args)

    monkeypatch.setattr(store, "_txn", held)
    writing = asyncio.create_task(store.put("k/1", b"x"))
    await asyncio.to_thread(running.wait)
    writing.cancel()  # while its transaction runs: it commits all the same
    release.set()
    events = await asyncio.wait_for(watching, 30)
    assert [(e.type, e.key, e.value) for e in events] == [(EventType.PUT, "k/0", b""), (EventType.PUT, "k/1", b"x")]
    assert (await store.get("k/1")) is not None
    await store.close()


async def test_a_watch_from_a_revision_to_come_starts_there(tmp_path: Path) -> None:
    store = await SqliteKV.open(tmp_path / "meta.db")
    start = await store.revision() + 3
    watching = asyncio.create_task(collect(store, "f/", start, 1))
    for n in range(3):
        await store.put(f"f/{n}", b"")
    assert [e.key for e in await asyncio.wait_for(watching, 30)] == ["f/2"]
    await store.close()


async def test_deleting_a_prefix_holds_nothing_per_key_deleted(tmp_path: Path) -> None:
    store = await SqliteKV.open(tmp_path / "meta.db")
    watching = asyncio.create_task(collect(store, "elsewhere/", await store.revision() + 1, 1))
    peaks = []
    for count in (KEYS, 4 * KEYS):
        for start in range(0, count, store.max_txn_ops):
            await store.txn([], [Put(f"many{count}/{n:08}", b"x" * 200)
                                 for n in range(start, min(count, start + store.max_txn_ops))])
        result, peak = await traced_peak(store.txn([], [DeletePrefix(f"many{count}/")]))
        assert result.succeeded
        peaks.append(peak)
        assert not (await store.range(f"many{count}/")).kvs
    assert peaks[1] - peaks[0] < MARGIN, peaks
    watching.cancel()
    await asyncio.gather(watching, return_exceptions=True)
    await store.close()
