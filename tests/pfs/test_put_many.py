"""Putting many small files: a bounded number of calls and messages, and bounded memory in pachd.

The client packs small files into blocks and names them in PutFileRefs calls
of at most packing.FILES_PER_CALL files; finishing a commit reads its pending
diffs a page at a time and stores each directory as soon as the diffs moved
past it (so it holds one path's directories, not the whole changed tree).
"""

from __future__ import annotations

import collections
import os
import random
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from pachd.pfs import Pfs
from pachd.pfs import files as files_module
from pachd.pfs import spill as spill_module
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.commits import PAGE
from pachd.errors import FileTypeConflict
from pachd.pfs.records import BlockRef, FileDiff, FileKind
from pachd.pfs.tree import NodeStore, Tree, TreeBuilder
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.sqlite import SqliteKV
from pachyderm_client import Client, packing
from pachyderm_client.proto import pfs_pb2_grpc
from tests.support.pachd import PachdProcess


class Counter(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Counts the calls made and the request messages sent, per method."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.messages: collections.Counter[str] = collections.Counter()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        self.calls[details.method] += 1
        self.messages[details.method] += 1
        return continuation(details, request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        self.calls[details.method] += 1

        def counted() -> Iterator[Any]:
            for request in requests:
                self.messages[details.method] += 1
                yield request

        return continuation(details, counted())


def counting(client: Client) -> Counter:
    counter = Counter()
    client._channel = grpc.intercept_channel(client._raw_channel, counter)
    client._pfs = pfs_pb2_grpc.APIStub(client._channel)
    return counter


FILES = 12_000


def test_many_small_files_take_a_few_calls_and_messages(own_pachd: PachdProcess) -> None:
    files = {f"/d{n % 40}/f{n}": b"%d\n" % n * (n % 7) for n in range(FILES)}
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        counter = counting(client)
        with client.commit("data") as commit:
            client.put_files(commit, files.items())
        size = sum(len(d) for d in files.values())
        assert sum(counter.messages.values()) < 20 + size // packing.MESSAGE + 2 * FILES // packing.FILES_PER_CALL
        assert counter.messages["/pfs.API/PutFile"] == 0
        listed = {f.file.path: f.size_bytes for f in client.walk_files(("data", commit.id))}
        assert listed == {path: len(data) for path, data in files.items()}
        for path in ("/d0/f0", "/d3/f43", f"/d{(FILES - 1) % 40}/f{FILES - 1}"):
            assert client.get_file_bytes(("data", commit.id), path) == files[path]


def test_small_and_large_files_keep_their_order_of_appends(own_pachd: PachdProcess) -> None:
    large = b"L\n" * (packing.SMALL_FILE // 2 + 1)
    items = [(f"/f{n}", b"a\n") for n in range(packing.PACK_AFTER)]
    items += [("/f0", large), ("/f0", b"b\n"), ("/f1", iter([b"c\n"])), ("/f1", b"d\n")]
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        counter = counting(client)
        with client.commit("data") as commit:
            client.put_files(commit, items)
        assert counter.calls["/pachpy.pods.PodData/PutFileRefs"] > 0
        assert client.get_file_bytes(("data", commit.id), "/f0") == b"a\n" + large + b"b\n"
        assert client.get_file_bytes(("data", commit.id), "/f1") == b"a\nc\nd\n"
        assert client.get_file_bytes(("data", commit.id), f"/f{packing.PACK_AFTER - 1}") == b"a\n"


def test_put_file_r_of_many_files_lays_them_out_as_before(own_pachd: PachdProcess, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    expected = {}
    for n in range(300):
        local = tree / f"dir{n % 7}" / f"file{n}"
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(os.urandom(n))
        expected[f"/in/dir{n % 7}/file{n}"] = local.read_bytes()
    (tree / "big").write_bytes(b"x\n" * packing.SMALL_FILE)
    expected["/in/big"] = (tree / "big").read_bytes()
    env = {**os.environ, "ADDRESS": own_pachd.address}
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        subprocess.run([sys.executable, "-m", "pachctl.main", "put-file", "data", "master", "in", "-c", "-r",
                        "-f", str(tree)], env=env, check=True, capture_output=True)
        found = {f.file.path: client.get_file_bytes(("data", "master"), f.file.path)
                 for f in client.walk_files(("data", "master"))}
        assert found == expected


class RangeSizes:
    """A KV that records the most keys one range returned (everything else passes through)."""

    def __init__(self, kv: SqliteKV) -> None:
        self._kv = kv
        self.most = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kv, name)

    async def range(self, prefix: str, **kwargs: Any) -> Any:
        found = await self._kv.range(prefix, **kwargs)
        self.most = max(self.most, len(found.kvs))
        return found


async def test_finishing_a_commit_of_many_files_reads_and_holds_a_bounded_part_of_it(tmp_path: Path) -> None:
    kv = RangeSizes(await SqliteKV.open(tmp_path / "kv.db"))
    try:
        pfs = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)  # type: ignore[arg-type]
        await pfs.repos.create("data", ())
        commit = await pfs.commits.start("data", "master", ())
        paths = [f"/d{n % 100}/f{n}" for n in range(3 * PAGE)]

        async def items() -> AsyncIterator[PutItem]:
            for path in paths:
                yield FileHeader("data", commit.id, path)
                yield path.encode()

        await pfs.files.put(items())
        kv.most = 0
        largest = 0
        original = TreeBuilder.take_sealed

        def watched(self: TreeBuilder) -> Any:
            nonlocal largest
            largest = max(largest, sum(len(entries) for entries, _ in self.sealed.values()))
            return original(self)

        TreeBuilder.take_sealed = watched  # type: ignore[method-assign]
        try:
            done = await pfs.commits.finish("data", commit.id)
        finally:
            TreeBuilder.take_sealed = original  # type: ignore[method-assign]
        assert kv.most <= PAGE + 1
        assert 0 < largest < 2 * PAGE  # what was stored page by page, never the whole tree at once
        listed = sorted([path async for path, _ in pfs.files.walk("data", done.id)])
        assert listed == sorted(paths)
    finally:
        await kv.close()


NAMES = ["a", "a.b", "a!", "a0", "b", "a-", " x", "z"]


async def test_sealing_builds_the_same_tree_as_building_at_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    store = NodeStore(LocalBlockStore(tmp_path / "blocks"))
    for _ in range(30):
        diffs: dict[str, FileDiff] = {}
        for _ in range(rng.randrange(1, 40)):
            depth = rng.randrange(1, 4)
            names = [rng.choice(NAMES) for _ in range(depth)]
            path = "/" + "/".join(names)
            if any(p.startswith(path + "/") or path.startswith(p + "/") for p in diffs):
                kind = FileKind.DIR
            else:
                kind = rng.choice([FileKind.FILE, FileKind.FILE, FileKind.NONE])
            diffs[path] = FileDiff(kind, delete=kind is FileKind.NONE, modified=1.0)
        for path in list(diffs):  # a path with something below it can only be a directory
            if any(other.startswith(path + "/") for other in diffs):
                diffs[path] = FileDiff(FileKind.DIR, modified=1.0)
        roots = []
        for sealing in (False, True):
            builder = TreeBuilder(Tree(store, ""), "c", sealing=sealing)
            for path in sorted(diffs):
                await builder.apply(path, diffs[path])
                if sealing and rng.random() < 0.3:
                    await store.save(builder.take_sealed(), remember=False)
            root, nodes = builder.build()
            await store.save(nodes)
            roots.append(root)
        assert roots[0] == roots[1], f"seed {seed}: {sorted(diffs.items())}"


async def test_files_applied_by_runs_of_one_directory_build_what_applying_each_builds(tmp_path: Path) -> None:
    """TreeBuilder.apply_files (a job pod's output, thousands of files per directory) against apply,
    diff by diff: the same tree, or the same conflict, over a base tree and in any order."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    store = NodeStore(LocalBlockStore(tmp_path / "blocks"))
    base_builder = TreeBuilder(Tree(store, ""), "base")
    for path in ["/a/b", "/a/z", "/b", "/z/a/x"]:
        await base_builder.apply(path, FileDiff(FileKind.FILE, refs=(BlockRef("h" * 128, 0, 3),), modified=1.0))
    base_root, base_nodes = base_builder.build()
    await store.save(base_nodes)

    def random_path() -> str:
        return "/" + "/".join(rng.choice(["a", "b", "z", "x"]) for _ in range(rng.randrange(1, 4)))

    for _ in range(200):
        diffs = []
        for _ in range(rng.randrange(1, 30)):
            kind = rng.choice([FileKind.FILE] * 6 + [FileKind.NONE, FileKind.DIR])
            refs = (BlockRef("h" * 128, 0, rng.randrange(1, 9)),) if kind is FileKind.FILE else ()
            diffs.append((random_path(), FileDiff(kind, delete=kind is FileKind.NONE or rng.random() < 0.2, refs=refs,
                                                  modified=float(rng.randrange(1, 4)))))
        if rng.random() < 0.5:
            diffs.sort(key=lambda d: d[0])
        for strict in (False, True):
            outcomes = []
            for by_runs in (False, True):
                builder = TreeBuilder(Tree(store, base_root), "c")
                try:
                    if by_runs:
                        await builder.apply_files(diffs, strict=strict)
                    else:
                        for path, diff in diffs:
                            await builder.apply(path, diff, strict=strict)
                except FileTypeConflict as err:
                    outcomes.append(str(err))
                    continue
                root, nodes = builder.build()
                await store.save(nodes)
                outcomes.append(root)
            assert outcomes[0] == outcomes[1], f"seed {seed}, strict {strict}: {diffs}"


async def test_a_long_put_file_stream_holds_a_bounded_number_of_files_and_stays_all_or_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_module, "HOLD", 50)
    monkeypatch.setattr(spill_module, "HOLD", 50)
    most = 0
    original = spill_module.Spill.add

    def watched(self: spill_module.Spill, rows: Any) -> None:
        nonlocal most
        original(self, rows)
        most = max(most, len(self._held))

    monkeypatch.setattr(spill_module.Spill, "add", watched)
    kv = await SqliteKV.open(tmp_path / "kv.db")
    try:
        blocks = LocalBlockStore(tmp_path / "blocks")
        pfs = Pfs(kv=kv, blocks=blocks, shared=False)
        await pfs.repos.create("data", ())
        commit = await pfs.commits.start("data", "master", ())
        paths = [f"/d{n % 9}/f{n}" for n in range(1000)]

        async def items(fail: bool) -> AsyncIterator[PutItem]:
            for n, path in enumerate(paths):
                if fail and n == len(paths) - 10:
                    raise RuntimeError("the client went away")
                yield FileHeader("data", commit.id, path)
                yield path.encode()
            yield FileHeader("data", commit.id, paths[0])  # an append, after the first was spilled
            yield b"+"

        with pytest.RaisesGroup(RuntimeError, allow_unwrapped=True, flatten_subgroups=True):
            await pfs.files.put(items(fail=True))
        assert [path async for path, _ in pfs.files.walk("data", commit.id)] == []
        assert await pfs.files.put(items(fail=False)) == len(paths) + 1
        assert 0 < most <= 50
        found = {path: b"".join([c async for c in pfs.files.get("data", commit.id, path)])
                 async for path, _ in pfs.files.walk("data", commit.id)}
        assert found == {path: path.encode() + (b"+" if path == paths[0] else b"") for path in paths}
        assert not list(blocks.temporary().parent.iterdir())  # the spill file is gone
    finally:
        await kv.close()
