"""What writing many files costs pachd's metadata store: nothing per file but the file's own diff.

A writer of many files into an open commit reads the commit's pending diffs in
one range instead of looking each path up, and still refuses every path that
conflicts with what the commit (or its parent) holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from pachd.errors import CommitFinished, FileTypeConflict
from pachd.pfs import Pfs
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.records import BlockRef
from pachd.pfs.refs import FileRefs
from pachd.pfs.spill import HOLD
from pachd.pfs.tree import NODE_PREFIX, DirEntry, TreeBuilder
from pachd.storage.blocks import Parts, WriteBatch
from pachd.storage.localdisk import LocalBlockStore
from pachd.config import PachdConfig
from pachd.storage import open_kv
from pachd.storage.kv import KV, Put
from pachd.storage.sqlite import SqliteKV
from tests.support.etcd import EtcdServer
from tests.support.memory import traced_peak

FILES = 2000
PENDING = 2500
STREAM = 2 * HOLD
"""Files of the smaller stream: past what a stream holds in memory before spilling."""
MARGIN = 1 << 20
"""Bytes a write may hold for 4 x PENDING pending diffs (or files) beyond what it holds for PENDING."""


class CountingKV:
    """A KV that counts the reads and written keys made through it (everything else passes through)."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv
        self.reads = 0
        self.puts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def get(self, key: str) -> Any:
        self.reads += 1
        return await self._kv.get(key)

    async def range(self, prefix: str, **kwargs: Any) -> Any:
        self.reads += 1
        return await self._kv.range(prefix, **kwargs)

    async def put(self, key: str, value: bytes, **kwargs: Any) -> Any:
        self.puts += 1
        return await self._kv.put(key, value, **kwargs)

    async def txn(self, compares: Sequence[Any], success: Sequence[Any], failure: Sequence[Any] = ()) -> Any:
        self.puts += sum(isinstance(op, Put) for op in success)
        return await self._kv.txn(compares, success, failure)


@pytest.fixture(params=["sqlite", "etcd"])
async def stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Pfs, CountingKV]]:
    etcd = EtcdServer(tmp_path / "etcd").start() if request.param == "etcd" else None
    try:
        kv = CountingKV(await open_kv(PachdConfig(data_dir=tmp_path / "data", etcd_address=etcd.address if etcd else "")))
        blocks = LocalBlockStore(tmp_path / "blocks")
        pfs = Pfs(kv=kv, blocks=blocks, shared=False)  # type: ignore[arg-type]
        await pfs.repos.create("data", ())
        yield pfs, kv
        await kv.close()
    finally:
        if etcd is not None:
            etcd.stop()


def stream(commit_id: str, paths: Sequence[str]) -> AsyncIterator[PutItem]:
    async def items() -> AsyncIterator[PutItem]:
        for path in paths:
            yield FileHeader("data", commit_id, path)
            yield f"{path}\n".encode()

    return items()


def spread(count: int, prefix: str = "") -> Iterator[str]:
    return (f"/{prefix}d{n % 50}/f{n}" for n in range(count))


async def test_a_stream_of_many_files_reads_the_store_a_few_times_not_per_file(
        stores: tuple[Pfs, CountingKV]) -> None:
    pfs, kv = stores
    parent = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(parent.id, list(spread(100, "old"))))
    await pfs.commits.finish("data", parent.id)
    commit = await pfs.commits.start("data", "master", ())
    kv.reads = 0
    assert await pfs.files.put(stream(commit.id, list(spread(FILES)))) == FILES
    assert kv.reads < FILES / 10
    listed = [path async for path, _ in pfs.files.walk("data", commit.id)]
    assert len(listed) == FILES + 100


async def test_many_block_references_read_the_store_a_few_times_not_per_file(
        stores: tuple[Pfs, CountingKV]) -> None:
    pfs, kv = stores
    commit = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(commit.id, ["/seed"]))
    seed = [refs async for _, refs in pfs.files.walk("data", commit.id)][0][0]
    files = [FileRefs(path, (BlockRef(seed.hash, 0, seed.upper),)) for path in spread(FILES)]
    kv.reads = 0
    assert await pfs.refs.put("data", commit.id, files) == FILES
    assert kv.reads < FILES / 10


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Pfs]:
    """Pfs on the embedded store alone, for measuring memory: through etcd, the client library's
    own allocations came out some 2 MB apart between a stream and one four times as long,
    which would blur what pachd itself holds."""
    kv = await SqliteKV.open(tmp_path / "kv.db")
    pfs = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)
    await pfs.repos.create("data", ())
    yield pfs
    await kv.close()


async def test_a_put_of_refs_holds_memory_for_its_own_files_not_for_what_the_commit_already_holds(
        embedded: Pfs) -> None:
    pfs = embedded
    commit = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(commit.id, ["/seed"]))
    seed = [refs async for _, refs in pfs.files.walk("data", commit.id)][0][0]

    def named(paths: Iterator[str]) -> list[FileRefs]:
        return [FileRefs(path, (BlockRef(seed.hash, 0, seed.upper),)) for path in paths]

    peaks, written = [], 0
    for pending in (PENDING, 4 * PENDING):
        await pfs.refs.put("data", commit.id, named(spread(pending)))  # the same paths again, and more
        written = pending
        # Spread over the same directories, so every pending diff lies between its first and last path.
        _, peak = await traced_peak(pfs.refs.put("data", commit.id, named(
            f"/d{n % 50}/g{written}-{n}" for n in range(FILES))))
        peaks.append(peak)
    assert peaks[1] - peaks[0] < MARGIN, peaks
    assert len([path async for path, _ in pfs.files.walk("data", commit.id)]) == 1 + 4 * PENDING + 2 * FILES


async def test_a_stream_of_many_files_holds_the_same_memory_for_four_times_the_files(embedded: Pfs) -> None:
    pfs = embedded
    peaks = []
    for count in (STREAM, 4 * STREAM):
        commit = await pfs.commits.start("data", f"b{count}", (), new_branch=True)
        written, peak = await traced_peak(pfs.files.put(stream(commit.id, list(spread(count)))))
        assert written == count
        peaks.append(peak)
    assert peaks[1] - peaks[0] < MARGIN, peaks


@pytest.mark.parametrize("late", [False, True])
async def test_conflicts_are_refused_whether_paths_are_looked_up_one_by_one_or_read_at_once(
        stores: tuple[Pfs, CountingKV], late: bool) -> None:
    pfs, _ = stores
    parent = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(parent.id, ["/parentfile"]))
    await pfs.commits.finish("data", parent.id)
    commit = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(commit.id, ["/file", "/dir/inner"]))
    before = list(spread(FILES if late else 0))
    for bad in ("/file/below", "/dir", "/parentfile/below"):
        with pytest.RaisesGroup(FileTypeConflict, allow_unwrapped=True, flatten_subgroups=True):
            await pfs.files.put(stream(commit.id, [*before, bad]))
    # Nothing of a refused stream was written.
    assert sorted([path async for path, _ in pfs.files.walk("data", commit.id)]) == [
        "/dir/inner", "/file", "/parentfile"]


class NodeWritesBlocks:
    """A block store that records the most tree nodes one call of its write batches was given
    (everything else passes through)."""

    def __init__(self, blocks: LocalBlockStore) -> None:
        self._blocks = blocks
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blocks, name)

    def batch(self) -> WriteBatch:
        return CountingBatch(self, self._blocks.batch())


class CountingBatch:
    def __init__(self, counts: NodeWritesBlocks, batch: WriteBatch) -> None:
        self._counts = counts
        self._batch = batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._batch, name)

    async def put(self, name: str, parts: Parts) -> None:
        self._counts.most = max(self._counts.most, int(name.startswith(NODE_PREFIX)))
        await self._batch.put(name, parts)

    async def put_all(self, objects: Mapping[str, bytes]) -> None:
        self._counts.most = max(self._counts.most, sum(name.startswith(NODE_PREFIX) for name in objects))
        await self._batch.put_all(objects)


async def test_a_commit_of_many_directories_stores_their_nodes_in_one_write_and_durably(tmp_path: Path) -> None:
    kv = await SqliteKV.open(tmp_path / "kv.db")
    blocks = NodeWritesBlocks(LocalBlockStore(tmp_path / "blocks"))
    try:
        pfs = Pfs(kv=kv, blocks=blocks, shared=False)  # type: ignore[arg-type]
        await pfs.repos.create("data", ())
        commit = await pfs.commits.start("data", "master", ())
        await pfs.files.put(stream(commit.id, list(spread(200))))
        finished = await pfs.commits.finish("data", commit.id)
        assert blocks.most > 1
        fresh = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)  # nothing cached
        listed = [path async for path, _ in fresh.files.walk("data", finished.id)]
        assert len(listed) == 200
    finally:
        await kv.close()


async def pods_of(pfs: Pfs, output: str, count: int, squash_into: str = "", name: str = "pod") -> list[str]:
    """Commits beside `output` (forked from its parent, as a job's pods are), each holding its share."""
    parent = (await pfs.commits.get("data", output))[0].parent
    pods = []
    for index in range(count):
        name = f"{name}{index}"
        pod = (await pfs.commits.fork("data", f"{parent[0]}/{parent[1]}", name, (), archived=True,
                                      squash_into=squash_into) if parent
               else await pfs.commits.start("data", name, (), archived=True, new_branch=True, squash_into=squash_into))
        mine = [path for n, path in enumerate(spread(FILES)) if n % count == index]
        await pfs.files.put(stream(pod.id, [*mine, "/shared"]))
        pods.append((await pfs.commits.finish("data", pod.id)).id)
    return pods


async def contents(pfs: Pfs, commit_id: str) -> dict[str, bytes]:
    found = {}
    async for path, _ in pfs.files.walk("data", commit_id):
        found[path] = b"".join([chunk async for chunk in pfs.files.get("data", commit_id, path)])
    return found


@pytest.mark.parametrize("pods", [1, 2])
async def test_finishing_as_a_squash_writes_no_key_per_file_and_equals_squash_then_finish(
        stores: tuple[Pfs, CountingKV], pods: int) -> None:
    pfs, kv = stores
    first = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(first.id, ["/old", "/shared"]))
    await pfs.commits.finish("data", first.id)
    by_squash = await pfs.commits.start("data", "master", ())
    sources = await pods_of(pfs, by_squash.id, pods)
    await pfs.squash.squash("data", sources, by_squash.id, replace=True)
    expected = await pfs.commits.finish("data", by_squash.id)
    target = await pfs.commits.fork("data", first.id, "other", ())  # the same parent as by_squash
    await pfs.files.put(stream(target.id, ["/dropped"]))  # pending diffs of its own are replaced, as by the squash
    kv.puts = 0
    done = await pfs.squash.finish("data", sources, target.id)
    assert kv.puts < 20
    assert done.finished is not None and done.size_bytes == expected.size_bytes
    found = await contents(pfs, done.id)
    assert found == await contents(pfs, expected.id) and len(found) == FILES + 2


async def test_a_squash_interrupted_after_it_began_finishing_is_completed_by_any_later_finish(
        stores: tuple[Pfs, CountingKV]) -> None:
    pfs, kv = stores
    target = await pfs.commits.start("data", "master", ())
    sources = await pods_of(pfs, target.id, 2)
    record, revision = await pfs.commits.get("data", target.id)
    # What squash.finish's first transaction leaves behind when pachd dies right after it.
    await pfs.commits.mark_finishing(record, revision, lambda c: dataclasses.replace(c, squash_from=tuple(sources)))
    restarted = Pfs(kv=kv, blocks=pfs.blocks, shared=False)  # type: ignore[arg-type]
    with pytest.RaisesGroup(CommitFinished, allow_unwrapped=True, flatten_subgroups=True):
        await restarted.files.put(stream(target.id, ["/late"]))
    done = await restarted.commits.finish("data", target.id)
    assert done.finished is not None and len(await contents(restarted, done.id)) == FILES + 1


async def seeded(pfs: Pfs) -> BlockRef:
    """A block of the repo, for files to name slices of."""
    seed = await pfs.commits.start("data", "seed", (), new_branch=True)
    await pfs.files.put(stream(seed.id, ["/seed"]))
    return [refs async for _, refs in pfs.files.walk("data", seed.id)][0][0]


async def test_last_writes_finish_a_commit_with_no_key_per_file_as_writing_then_finishing_would(
        stores: tuple[Pfs, CountingKV]) -> None:
    pfs, kv = stores
    block = await seeded(pfs)
    first = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(first.id, ["/kept", "/appended", "/replaced", "/gone/inner"]))
    await pfs.commits.finish("data", first.id)
    piece = (BlockRef(block.hash, 0, 3),)
    files = [FileRefs(path, piece) for path in spread(FILES)]
    files += [FileRefs("/appended", piece), FileRefs("/replaced", piece, replace=True)]
    written = await pfs.commits.fork("data", first.id, "written", ())
    await pfs.refs.put("data", written.id, files, ["/gone"])
    expected = await pfs.commits.finish("data", written.id)
    target = await pfs.commits.fork("data", first.id, "direct", ())
    await pfs.files.put(stream(target.id, ["/pending"]))  # writes before the last ones stay
    kv.puts = 0
    assert await pfs.refs.put("data", target.id, files, ["/gone"], finish=True) == len(files)
    assert kv.puts < 20
    done = (await pfs.commits.get("data", target.id))[0]
    assert done.finished is not None and done.size_bytes == expected.size_bytes + len(b"/pending\n")
    found = await contents(pfs, done.id)
    assert found.pop("/pending") == b"/pending\n"
    assert found == await contents(pfs, expected.id) and len(found) == FILES + 3


async def test_last_writes_that_cannot_be_written_leave_the_commit_open_as_it_was(
        stores: tuple[Pfs, CountingKV]) -> None:
    pfs, _ = stores
    block = await seeded(pfs)
    parent = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(parent.id, ["/parentfile"]))
    await pfs.commits.finish("data", parent.id)
    commit = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(commit.id, ["/file", "/dir/inner"]))
    good = [FileRefs(path, (block,)) for path in spread(100)]
    for bad in ("/file/below", "/dir", "/parentfile/below"):
        with pytest.raises(FileTypeConflict):
            await pfs.refs.put("data", commit.id, [*good, FileRefs(bad, (block,))], finish=True)
        record = (await pfs.commits.get("data", commit.id))[0]
        assert record.is_open and not record.finishing
    await pfs.files.put(stream(commit.id, ["/later"]))  # still writable
    done = await pfs.commits.finish("data", commit.id)
    assert sorted(await contents(pfs, done.id)) == ["/dir/inner", "/file", "/later", "/parentfile"]


async def test_last_writes_into_a_commit_that_began_finishing_are_refused(stores: tuple[Pfs, CountingKV]) -> None:
    pfs, _ = stores
    block = await seeded(pfs)
    commit = await pfs.commits.start("data", "master", ())
    record, revision = await pfs.commits.get("data", commit.id)
    await pfs.commits.mark_finishing(record, revision)
    with pytest.raises(CommitFinished):
        await pfs.refs.put("data", commit.id, [FileRefs("/late", (block,))], finish=True)
    done = await pfs.commits.finish("data", commit.id)
    assert await contents(pfs, done.id) == {}


@pytest.mark.parametrize("pods", [1, 2, 3])
async def test_pods_commits_naming_the_output_are_squashed_tree_by_tree_as_diff_by_diff(
        stores: tuple[Pfs, CountingKV], pods: int, monkeypatch: pytest.MonkeyPatch) -> None:
    pfs, kv = stores
    first = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(first.id, ["/old", "/shared", *spread(50, "old")]))
    await pfs.commits.finish("data", first.id)
    by_diffs = await pfs.commits.fork("data", first.id, "bydiffs", ())
    expected = await pfs.squash.finish("data", await pods_of(pfs, by_diffs.id, pods), by_diffs.id)
    target = await pfs.commits.start("data", "master", ())
    sources = await pods_of(pfs, target.id, pods, squash_into=target.id, name="named")
    applied = 0
    apply = TreeBuilder.apply

    async def counted(self: TreeBuilder, *args: Any, **kwargs: Any) -> None:
        nonlocal applied
        applied += 1
        await apply(self, *args, **kwargs)

    monkeypatch.setattr(TreeBuilder, "apply", counted)
    kv.puts = 0
    done = await pfs.squash.finish("data", sources, target.id)
    assert applied == 0 and kv.puts < 20
    assert done.size_bytes == expected.size_bytes
    assert await contents(pfs, done.id) == await contents(pfs, expected.id)
    listed = await pfs.files.list("data", done.id, "/")
    assert [(i.path, i.size) for i in listed] == [(i.path, i.size) for i in await pfs.files.list("data", expected.id, "/")]
    changed = {i.path: i.commit_modified for i in listed}
    assert changed["/shared"] == changed["/d0"] == target.id and changed["/old"] == first.id


async def test_a_squash_of_pods_owning_their_own_directories_reads_no_node_below_them(
        stores: tuple[Pfs, CountingKV], monkeypatch: pytest.MonkeyPatch) -> None:
    """A job's file shards split its output by top-level directory: merging the pods' trees
    takes each such directory as its pod made it, without reading what is below it."""
    pfs, _ = stores
    first = await pfs.commits.start("data", "master", ())
    await pfs.files.put(stream(first.id, ["/old/kept", "/shared/base"]))
    await pfs.commits.finish("data", first.id)
    target = await pfs.commits.start("data", "master", ())
    sources = []
    for index in range(2):
        pod = await pfs.commits.fork("data", first.id, f"pod{index}", (), archived=True, squash_into=target.id)
        # Each pod's own directories (two levels, so a skipped node has nodes below it), and one shared.
        await pfs.files.put(stream(pod.id, [f"/p{index}d{d}/sub/f{n}" for d in range(5) for n in range(3)]
                                   + [f"/shared/from{index}"]))
        sources.append((await pfs.commits.finish("data", pod.id)).id)
    owned = set()
    for source in sources:
        record, _ = await pfs.commits.get("data", source)
        view = await pfs.commits.view(record, "/")
        async for path, entry in view.walk("/", await view.root_entry()):
            if path.startswith("/p") and isinstance(entry, DirEntry):
                owned.add(entry.node)
    loaded = []
    load = type(pfs.commits.nodes).load

    async def counted(self: Any, node: str) -> Any:
        loaded.append(node)
        return await load(self, node)

    monkeypatch.setattr(type(pfs.commits.nodes), "load", counted)
    done = await pfs.squash.finish("data", sources, target.id)
    assert not owned & set(loaded)
    monkeypatch.undo()
    listed = {i.path: i.size for i in await pfs.files.list("data", done.id, "/")}
    assert listed["/p0d0"] == listed["/p1d4"] == sum(len(f"/p0d0/sub/f{n}\n") for n in range(3))
    assert listed["/old"] == len("/old/kept\n")
    assert listed["/shared"] == sum(len(f"{p}\n") for p in ["/shared/base", "/shared/from0", "/shared/from1"])
