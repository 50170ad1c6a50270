"""What writing many files costs pachd's metadata store: nothing per file but the file's own diff.

A writer of many files into an open commit reads the commit's pending diffs in
one range instead of looking each path up, and still refuses every path that
conflicts with what the commit (or its parent) holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from pachd.errors import FileTypeConflict
from pachd.pfs import Pfs
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.records import BlockRef
from pachd.pfs.refs import FileRefs
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.sqlite import SqliteKV

FILES = 2000


class CountingKV:
    """A KV that counts the reads made through it (everything else passes through)."""

    def __init__(self, kv: SqliteKV) -> None:
        self._kv = kv
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def get(self, key: str) -> Any:
        self.reads += 1
        return await self._kv.get(key)

    async def range(self, prefix: str, **kwargs: Any) -> Any:
        self.reads += 1
        return await self._kv.range(prefix, **kwargs)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Pfs, CountingKV]]:
    kv = CountingKV(await SqliteKV.open(tmp_path / "kv.db"))
    blocks = LocalBlockStore(tmp_path / "blocks")
    pfs = Pfs(kv=kv, blocks=blocks, shared=False)  # type: ignore[arg-type]
    await pfs.repos.create("data", ())
    yield pfs, kv
    await kv.close()


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


class ConcurrencyBlocks:
    """A block store that records how many puts ran at once (everything else passes through)."""

    def __init__(self, blocks: LocalBlockStore) -> None:
        self._blocks = blocks
        self.running = 0
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blocks, name)

    async def put(self, name: str, data: bytes) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await self._blocks.put(name, data)
        finally:
            self.running -= 1


async def test_a_commit_of_many_directories_stores_their_nodes_at_once_and_durably(tmp_path: Path) -> None:
    kv = await SqliteKV.open(tmp_path / "kv.db")
    blocks = ConcurrencyBlocks(LocalBlockStore(tmp_path / "blocks"))
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
