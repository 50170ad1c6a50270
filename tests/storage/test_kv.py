"""One conformance suite for every metadata store (embedded SQLite, etcd)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pachd.errors import Compacted, InvalidArgument, StorageError
from pachd.storage.etcd import EtcdKV
from pachd.storage.kv import KV, Compare, Delete, DeletePrefix, Event, EventType, Put
from pachd.storage.sqlite import SqliteKV
from tests.support.etcd import EtcdServer
from tests.support.wait import async_wait_until


async def test_get_put_delete_and_revisions(kv: KV) -> None:
    assert await kv.get("a") is None
    first = await kv.put("a", b"1")
    second = await kv.put("a", b"2")
    assert second > first
    found = await kv.get("a")
    assert found is not None and found.value == b"2"
    assert (found.create_revision, found.mod_revision, found.version) == (first, second, 2)
    assert await kv.revision() == second
    assert await kv.delete("a") is True
    assert await kv.delete("a") is False
    assert await kv.get("a") is None


async def test_range_prefixes_order_start_and_limit(kv: KV) -> None:
    for key in ["a/1", "a/2", "a/10", "a0", "a", "b/1", "a/ü", "a/\u0101"]:
        await kv.put(key, key.encode())
    listed = await kv.range("a/")
    assert [k.key for k in listed.kvs] == sorted(["a/1", "a/10", "a/2", "a/ü", "a/\u0101"], key=str.encode)
    assert listed.revision == await kv.revision()
    assert [k.key for k in (await kv.range("a/", start="a/2")).kvs] == ["a/2", "a/ü", "a/\u0101"]
    assert [k.key for k in (await kv.range("a/", limit=2)).kvs] == ["a/1", "a/10"]
    assert len((await kv.range("")).kvs) == 8


async def test_range_over_many_keys_is_complete(kv: KV) -> None:
    for start in range(0, 2500, 100):
        await kv.txn([], [Put(f"many/{i:05d}", b"x") for i in range(start, start + 100)])
    listed = await kv.range("many/")
    assert [k.key for k in listed.kvs] == [f"many/{i:05d}" for i in range(2500)]


async def test_txn_compares_revisions(kv: KV) -> None:
    revision = await kv.put("k", b"v1")
    missed = await kv.txn([Compare("k", revision + 100)], [Put("k", b"no")], [Put("other", b"failure ran")])
    assert not missed.succeeded
    assert (await kv.get("k")).value == b"v1"  # type: ignore[union-attr]
    assert (await kv.get("other")).value == b"failure ran"  # type: ignore[union-attr]
    held = await kv.txn([Compare("k", revision), Compare("absent", 0)], [Put("k", b"v2"), Put("absent", b"now")])
    assert held.succeeded and held.revision == await kv.revision()
    assert not (await kv.txn([Compare("absent", 0)], [Put("absent", b"again")])).succeeded


async def test_txn_deletes_and_prefix_deletes(kv: KV) -> None:
    await kv.txn([], [Put("d/1", b""), Put("d/2", b""), Put("d2", b""), Put("e", b"")])
    assert (await kv.txn([], [DeletePrefix("d/"), Delete("e")])).succeeded
    assert [k.key for k in (await kv.range("")).kvs] == ["d2"]
    assert await kv.delete_prefix("d") == 1


async def test_too_many_ops_is_refused(kv: KV) -> None:
    with pytest.raises(InvalidArgument):
        await kv.txn([], [Put(f"x/{i}", b"") for i in range(kv.max_txn_ops + 1)])


async def test_racing_txns_on_one_key_have_one_winner(kv: KV) -> None:
    revision = await kv.put("race", b"start")
    results = await asyncio.gather(*(kv.txn([Compare("race", revision)], [Put("race", str(i).encode())])
                                     for i in range(10)))
    assert sum(r.succeeded for r in results) == 1


async def collect(kv: KV, prefix: str, start: int, count: int) -> list[Event]:
    events: list[Event] = []
    async for event in kv.watch(prefix, start_revision=start):
        events.append(event)
        if len(events) == count:
            break
    return events


async def test_watch_replays_history_then_follows(kv: KV) -> None:
    start = await kv.put("w/a", b"1")
    await kv.put("other", b"x")
    await kv.delete("w/a")
    watching = asyncio.create_task(collect(kv, "w/", start, 4))
    await asyncio.sleep(0)
    await kv.put("w/b", b"2")
    await kv.txn([], [Put("w/c", b"3"), Put("elsewhere", b"")])
    events = await asyncio.wait_for(watching, 30)
    assert [(e.type, e.key, e.value) for e in events] == [
        (EventType.PUT, "w/a", b"1"), (EventType.DELETE, "w/a", b""), (EventType.PUT, "w/b", b"2"),
        (EventType.PUT, "w/c", b"3")]
    assert [e.mod_revision for e in events] == sorted(e.mod_revision for e in events)


async def test_watch_misses_nothing_under_concurrent_writers(kv: KV) -> None:
    start = await kv.revision() + 1
    watching = asyncio.create_task(collect(kv, "c/", start, 200))

    async def writer(n: int) -> None:
        for i in range(20):
            await kv.put(f"c/{n}/{i}", b"")

    await asyncio.gather(*(writer(n) for n in range(10)))
    events = await asyncio.wait_for(watching, 30)
    assert len({e.key for e in events}) == 200
    assert [e.mod_revision for e in events] == sorted(e.mod_revision for e in events)


async def test_breaking_out_of_a_watch_ends_it(kv: KV) -> None:
    await kv.put("x/1", b"")
    assert len(await collect(kv, "x/", 1, 1)) == 1
    await kv.put("x/2", b"")  # nothing hangs or leaks


async def test_leases_expire_refresh_and_revoke(kv: KV) -> None:
    lease = await kv.grant_lease(1.0)
    await kv.put("leased/a", b"", lease=lease.id)
    kept = await kv.grant_lease(10.0)
    await kv.put("leased/kept", b"", lease=kept.id)
    await kv.put("leased/plain", b"")
    await async_wait_until(lambda: _missing(kv, "leased/a"), timeout=10, what="the lease to expire")
    await kept.refresh()
    assert await kv.get("leased/kept") is not None
    await kept.revoke()
    assert await kv.get("leased/kept") is None
    assert await kv.get("leased/plain") is not None


async def _missing(kv: KV, key: str) -> bool:
    return await kv.get(key) is None


async def test_sqlite_keeps_everything_across_reopen(tmp_path: Path) -> None:
    store = await SqliteKV.open(tmp_path / "meta.db")
    revision = await store.put("k", b"v")
    await store.close()
    store = await SqliteKV.open(tmp_path / "meta.db")
    assert (await store.get("k")).value == b"v"  # type: ignore[union-attr]
    assert await store.revision() == revision
    assert [e.key for e in await collect(store, "", 1, 1)] == ["k"]
    await store.close()


async def test_sqlite_compacted_history_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pachd.storage.sqlite as sqlite

    monkeypatch.setattr(sqlite, "KEEP_EVENTS", 10)
    store = await SqliteKV.open(tmp_path / "meta.db")
    for i in range(1005):
        await store.put("k", str(i).encode())
    with pytest.raises(Compacted):
        await collect(store, "", 1, 1)
    await store.close()


async def test_etcd_outage_and_recovery(own_etcd: EtcdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import pachd.storage.etcd as etcd

    monkeypatch.setattr(etcd, "CALL_TIMEOUT", 2.0)
    store = await EtcdKV.open(own_etcd.address)
    start = await store.put("o/before", b"1")
    watching = asyncio.create_task(collect(store, "o/", start, 3))
    own_etcd.kill()
    with pytest.raises(StorageError):
        await store.put("o/during", b"x")
    own_etcd.start()
    await store.put("o/after", b"2")
    await store.put("o/later", b"3")
    events = await asyncio.wait_for(watching, 60)
    assert [e.key for e in events] == ["o/before", "o/after", "o/later"]
    await store.close()


async def test_a_prefix_delete_reaches_each_watch_and_the_history_key_by_key(kv: KV) -> None:
    start = await kv.txn([], [Put("p/a/1", b""), Put("p/a/2", b""), Put("p/b/1", b""), Put("q", b"")])
    inner = asyncio.create_task(collect(kv, "p/a/", start.revision + 1, 2))
    outer = asyncio.create_task(collect(kv, "p", start.revision + 1, 4))
    await asyncio.sleep(0)
    await kv.txn([], [Put("pz", b"new"), DeletePrefix("p/")])
    assert [(e.type, e.key) for e in await asyncio.wait_for(inner, 30)] == [
        (EventType.DELETE, "p/a/1"), (EventType.DELETE, "p/a/2")]
    assert [(e.type, e.key) for e in await asyncio.wait_for(outer, 30)] == [
        (EventType.PUT, "pz"), (EventType.DELETE, "p/a/1"), (EventType.DELETE, "p/a/2"), (EventType.DELETE, "p/b/1")]
    replayed = await asyncio.wait_for(collect(kv, "p/", start.revision + 1, 3), 30)
    assert [(e.type, e.key) for e in replayed] == [
        (EventType.DELETE, "p/a/1"), (EventType.DELETE, "p/a/2"), (EventType.DELETE, "p/b/1")]
    assert [k.key for k in (await kv.range("")).kvs] == ["pz", "q"]
