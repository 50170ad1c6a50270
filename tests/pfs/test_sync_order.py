"""Blocks are durable before any committed metadata names them.

A put-file stream's blocks are synced together, once, just before its
metadata transaction. These tests run PFS in-process on the real SQLite KV
and the real local block store, and record, in one sequence, every sync
call the store makes (through its Disk seam, which still syncs) and every
transaction the KV commits. For each block a committed transaction names,
its data must have been synced, then its file renamed into place, then its
folder synced, all before that transaction.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pachd.pfs import Pfs, blocks, wire
from pachd.pfs.chunking import Delimiter
from pachd.pfs.files import FileHeader, PutItem
from pachd.storage.kv import Compare, Op, Put, TxnResult
from pachd.storage.localdisk import Disk, LocalBlockStore
from pachd.storage.sqlite import SqliteKV
from pachyderm_client.proto import pfs_pb2

MIB = 1 << 20


@dataclass
class Log:
    events: list[tuple[str, str]] = field(default_factory=list)  # (what, object or file name)
    txns: list[tuple[int, list[bytes]]] = field(default_factory=list)  # (place in events, values written)
    temporary: dict[str, str] = field(default_factory=dict)  # temporary file name -> object name


class RecordingDisk(Disk):
    def __init__(self, log: Log) -> None:
        self.log = log

    def sync_file(self, path: Path) -> None:
        super().sync_file(path)
        self.log.events.append(("data", path.name))

    def replace(self, source: Path, target: Path) -> None:
        super().replace(source, target)
        self.log.temporary[source.name] = target.name
        self.log.events.append(("rename", target.name))

    def sync_dir(self, folder: Path) -> None:
        super().sync_dir(folder)
        self.log.events.append(("folder", folder.name))


class RecordingKV(SqliteKV):
    log: Log

    async def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> TxnResult:
        result = await super().txn(compares, success, failure)
        ops = success if result.succeeded else failure
        self.log.txns.append((len(self.log.events), [op.value for op in ops if isinstance(op, Put)]))
        self.log.events.append(("txn", ""))
        return result


@pytest.fixture
async def recorded(tmp_path: Path) -> AsyncIterator[tuple[Pfs, Log]]:
    log = Log()
    kv = await RecordingKV.open(tmp_path / "meta.db")
    kv.log = log  # type: ignore[attr-defined]
    store = LocalBlockStore(tmp_path / "objects", disk=RecordingDisk(log))
    try:
        yield Pfs(kv=kv, blocks=store, shared=False), log
    finally:
        await store.close()
        await kv.close()


def lines(size: int) -> bytes:
    text = os.urandom(size // 2).hex().encode()
    return b"\n".join(text[i : i + 63] for i in range(0, len(text), 63)) + b"\n"


async def stream(repo: str, commit_id: str, files: list[tuple[str, bytes, Delimiter]]) -> AsyncIterator[PutItem]:
    for path, data, delimiter in files:
        yield FileHeader(repo, commit_id, path, delimiter=delimiter)
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]


def check_order(log: Log, hashes: set[str]) -> None:
    assert hashes
    for block_hash in hashes:
        named = [place for place, values in log.txns if any(block_hash.encode() in v for v in values)]
        assert named, f"no transaction names block {block_hash[:12]}"
        first = named[0]
        temporaries = {tmp for tmp, target in log.temporary.items() if target == block_hash}
        before = log.events[:first]
        renamed = [i for i, (what, name) in enumerate(before) if what == "rename" and name == block_hash]
        assert renamed, f"block {block_hash[:12]} named before it was in place"
        # Its data synced before it took its name (a name always means whole bytes).
        assert any(what == "data" and name in temporaries for what, name in before[: renamed[0]]), \
            f"block {block_hash[:12]} in place before its data was synced"
        assert ("folder", block_hash[:2]) in before[renamed[0]:], \
            f"block {block_hash[:12]} named before its folder was synced"


async def refs_of(pfs: Pfs, repo: str, commit_id: str) -> set[str]:
    return {ref.hash async for _, refs in pfs.files.walk(repo, commit_id) for ref in refs}


async def test_a_put_streams_blocks_are_synced_before_its_metadata(recorded: tuple[Pfs, Log]) -> None:
    pfs, log = recorded
    await pfs.repos.create("data", [])
    commit = await pfs.commits.start("data", "master", ())
    files = [
        ("/lines", lines(20 * MIB), Delimiter.LINE),  # several blocks of 8 MiB, cut at lines
        ("/whole", os.urandom(3 * MIB), Delimiter.NONE),  # one block streamed through a temporary file
        *((f"/small/{i}", b"%d\n" % i, Delimiter.LINE) for i in range(50)),  # packed into a shared block
    ]
    assert await pfs.files.put(stream("data", commit.id, files)) == 52
    hashes = await refs_of(pfs, "data", commit.id)
    assert len(hashes) >= 5
    check_order(log, hashes)
    # One batch: every data sync comes before any rename, and each folder is synced once.
    kinds = [what for what, _ in log.events if what != "txn"]
    assert kinds.index("rename") > max(i for i, k in enumerate(kinds) if k == "data")
    folders = [name for what, name in log.events if what == "folder"]
    assert len(folders) == len(set(folders))
    await pfs.commits.finish("data", commit.id)
    assert (await pfs.commits.get("data", commit.id))[0].finished


async def test_a_commits_tree_nodes_are_made_durable_together_before_it_is_finished(
        recorded: tuple[Pfs, Log]) -> None:
    pfs, log = recorded
    await pfs.repos.create("data", [])
    commit = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream("data", commit.id, [(f"/d{i}/f", b"x\n", Delimiter.LINE) for i in range(40)]))
    start = len(log.events)
    finished = await pfs.commits.finish("data", commit.id)
    events = log.events[start:]
    nodes = {target for target in log.temporary.values() if len(target) == 64}  # sha256 names (blocks: sha512)
    assert len(nodes) == 41  # the root and 40 directories
    steps = [what for what, name in events
             if (what == "data" and log.temporary.get(name) in nodes) or (what == "rename" and name in nodes)]
    assert steps.count("data") == steps.count("rename") == 41
    # Saved in batches, each synced whole before any of its nodes takes its name: the directories the
    # finish sealed as it went, then the rest with the root (one sync and rename per node, one after
    # the other, would make 41 runs).
    runs = [what for k, what in enumerate(steps) if k == 0 or steps[k - 1] != what]
    assert runs in (["data", "rename"], ["data", "rename", "data", "rename"])
    folders = [name for what, name in events if what == "folder"]
    assert len(folders) <= 2 * len({name[:2] for name in nodes})  # each folder synced once a batch
    assert events[-1] == ("txn", "") and finished.root in nodes  # then the commit names its root


async def test_a_reused_block_is_durable_before_the_put_that_reuses_it(recorded: tuple[Pfs, Log]) -> None:
    pfs, log = recorded
    await pfs.repos.create("data", [])
    data = lines(10 * MIB)
    first = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream("data", first.id, [("/a", data, Delimiter.LINE)]))
    hashes = await refs_of(pfs, "data", first.id)
    second = await pfs.commits.start("data", "other", ())
    mark = len(log.events)
    await pfs.files.put(stream("data", second.id, [("/b", data, Delimiter.LINE)]))
    assert await refs_of(pfs, "data", second.id) == hashes
    again = log.events[mark:]
    assert not any(what in ("data", "rename") for what, _ in again)  # stored once
    txn = again.index(("txn", ""))
    assert {("folder", h[:2]) for h in hashes} <= set(again[:txn])  # its writer's folder sync covered


async def test_put_block_stores_durable_blocks(recorded: tuple[Pfs, Log]) -> None:
    pfs, log = recorded

    async def chunks() -> AsyncIterator[bytes]:
        data = lines(12 * MIB)
        for start in range(0, len(data), MIB):
            yield data[start : start + MIB]

    refs = await blocks.put_stream(pfs.blocks, Delimiter.LINE, chunks())
    assert len(refs) == 2
    names = [name for what, name in log.events if what == "rename"]
    assert sorted(names) == sorted(r.hash for r in refs)
    for ref in refs:
        assert ("folder", ref.hash[:2]) in log.events


async def test_a_block_larger_than_a_block_is_durable_before_its_metadata(recorded: tuple[Pfs, Log]) -> None:
    # As PutFile hands it over: slices of the received messages, hashed and written while more arrive.
    pfs, log = recorded
    await pfs.repos.create("data", [])
    commit = await pfs.commits.start("data", "master", ())
    data = os.urandom(3 * blocks.STEP + 12345)

    async def received() -> AsyncIterator[PutItem]:
        yield FileHeader("data", commit.id, "/whole", delimiter=Delimiter.NONE)
        for start in range(0, len(data), MIB):
            message = pfs_pb2.PutFileRequest(value=data[start : start + MIB]).SerializeToString()
            value = wire.put_file_request(message).value
            assert value is not None
            yield value

    assert await pfs.files.put(received()) == 1
    hashes = await refs_of(pfs, "data", commit.id)
    assert hashes == {hashlib.sha512(data).hexdigest()}  # one block, named by its bytes
    check_order(log, hashes)
    got = b"".join([chunk async for chunk in pfs.files.get("data", commit.id, "/whole")])
    assert got == data
