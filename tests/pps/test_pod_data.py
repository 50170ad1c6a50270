"""How pods move their data: each input block read once, the output sent as one block
stream named file by file (pachpy.pods.PodData beside the BlockAPI)."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
from collections import Counter
from pathlib import Path

import grpc
import pytest

from pachd.pfs.records import FileDiff, FileKind
from pachd.pfs.tree import NODE_PREFIX, NodeStore, Tree, TreeBuilder
from pachd.storage.localdisk import LocalBlockStore
from pachyderm_client import Client
from pachyderm_client.pfs import NONE
from pachyderm_client.proto import fuse_pb2, pfs_pb2, pods_pb2, pods_pb2_grpc
from shim import layout
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

TIMEOUT = 180
BIG = 9 * 1024 * 1024 + 7  # more than one block


def calls(server: PachdProcess, method: str) -> int:
    return sum(1 for line in server.log_path.read_text().splitlines() if f" {method} from " in line)


def test_a_job_over_many_files_reads_each_block_once_and_writes_in_one_call(own_pachd: PachdProcess) -> None:
    small = {f"/d{i % 7}/f{i}": (b"%d\n" % i) * (i % 5) for i in range(400)}  # some empty
    big = bytes(range(256)) * (BIG // 256) + b"tail"
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), list(small.items()))
            client.put_file(("data", c.id), "/big", big, delimiter=NONE)
        client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
        before = {m: calls(own_pachd, m) for m in ("/pfs.API/GetFile", "/pfs.API/PutFile", "/pfs.BlockAPI/GetBlock",
                                                   "/pachpy.pods.PodData/PutFileRefs")}
        out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1].commit.id
        got = {info.file.path: client.get_file_bytes(("copy", out), info.file.path)
               for info in client.walk_files(("copy", out))}
    assert got == {**small, "/big": big}
    assert calls(own_pachd, "/pfs.API/GetFile") == before["/pfs.API/GetFile"] + len(got)  # only ours, above
    assert calls(own_pachd, "/pfs.API/PutFile") == before["/pfs.API/PutFile"]
    assert calls(own_pachd, "/pfs.BlockAPI/GetBlock") - before["/pfs.BlockAPI/GetBlock"] <= 4  # a few blocks
    assert calls(own_pachd, "/pachpy.pods.PodData/PutFileRefs") == before["/pachpy.pods.PodData/PutFileRefs"] + 1  # the pod's


def test_an_incremental_job_appends_rewrites_and_deletes(own_pachd: PachdProcess) -> None:
    script = """
cat /pfs/data/* >> /pfs/out/all
for f in /pfs/data/*; do cp $f /pfs/out/last; done
[ -e /pfs/out/gone ] && rm /pfs/out/gone || touch /pfs/out/gone
"""
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("inc", script, [("data", MAP)]))
        outputs = []
        for n in range(3):
            with client.commit("data") as c:
                client.put_file(("data", c.id), f"f{n}", b"%d\n" % n)
            outputs.append(client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1].commit.id)
        files = [{i.file.path: client.get_file_bytes(("inc", o), i.file.path) for i in client.walk_files(("inc", o))}
                 for o in outputs]
    assert files[0] == {"/all": b"0\n", "/last": b"0\n", "/gone": b""}
    assert files[1] == {"/all": b"0\n1\n", "/last": b"1\n"}
    assert files[2] == {"/all": b"0\n1\n2\n", "/last": b"2\n", "/gone": b""}


def test_put_file_refs_refuses_blocks_that_do_not_exist(client: Client) -> None:
    client.create_repo("data")
    commit = client.start_commit("data")
    with grpc.insecure_channel(client.address) as channel:
        stub = pods_pb2_grpc.PodDataStub(channel)
        missing = pfs_pb2.BlockRef(block=pfs_pb2.Block(hash="ab" * 64), range=pfs_pb2.ByteRange(lower=0, upper=3))
        with pytest.raises(grpc.RpcError) as raised:
            stub.PutFileRefs(pods_pb2.PutFileRefsRequest(commit=commit, files=[pods_pb2.FileRef(path="/f", block_refs=[missing])]))
    assert raised.value.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
    client.finish_commit(("data", commit.id))
    assert client.list_file(("data", commit.id)) == []


def test_a_pods_layout_writes_every_file_of_its_blocks_and_how_out_started(client: Client, tmp_path: Path) -> None:
    # Listed in three batches, the later ones with folders of their own; the files share blocks across batches.
    files = {f"d{i % 5}/{'deeper/' * (i > 1500)}f{i}": (b"%d\n" % i) * (i % 4) for i in range(2500)}  # some empty
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), list(files.items()))
    commit = pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id=c.id)
    mounts = [fuse_pb2.CommitMount(commit=commit), fuse_pb2.CommitMount(commit=commit, alias="out")]
    started = layout.download(layout.Wire(client.channel), mounts, tmp_path)
    for name in ("data", "out"):
        assert {p.relative_to(tmp_path / name).as_posix(): p.read_bytes()
                for p in (tmp_path / name).rglob("*") if p.is_file()} == files
    assert {path: (s.size, s.sha256) for path, s in started.items()} == {
        path: (len(data), hashlib.sha256(data).hexdigest()) for path, data in files.items()}


def test_a_pods_upload_names_its_changes_over_several_calls_as_one_would(client: Client, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(layout, "PUT_BATCH", 3)  # named three files a call
    client.create_repo("data")
    before = {"kept": b"k\n", "grows": b"1\n", "rewritten": b"old\n", "gone": b"x\n", "d/kept": b"dk\n"}
    with client.commit("data") as c:
        client.put_files(("data", c.id), list(before.items()))
    commit = pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id=c.id)
    started = layout.download(layout.Wire(client.channel), [fuse_pb2.CommitMount(commit=commit, alias="out")], tmp_path)
    out = tmp_path / "out"
    (out / "gone").unlink()
    with open(out / "grows", "ab") as handle:
        handle.write(b"2\n")
    (out / "rewritten").write_bytes(b"new\n")
    after = {"kept": b"k\n", "grows": b"1\n2\n", "rewritten": b"new\n", "d/kept": b"dk\n", "empty": b"",
             "large": b"%d\n" % 7 * (5 << 20)}  # past a block: named by two refs
    after |= {f"new/f{i}": b"%d\n" % i for i in range(8)}
    (out / "new").mkdir()
    for name, data in after.items():
        if name not in before:
            (out / name).write_bytes(data)
    into = client.start_commit("data", parent=c.id)
    assert layout.upload(layout.Wire(client.channel), into, out, started) == 12  # grows, rewritten, empty, large, new/*
    assert {i.file.path: client.get_file_bytes(("data", into.id), i.file.path)
            for i in client.walk_files(("data", into.id))} == {f"/{name}": data for name, data in after.items()}


def test_a_pods_upload_turns_a_folder_into_a_file_and_a_file_into_a_folder(client: Client, tmp_path: Path) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("e/z", b"z\n"), ("e/deep/y", b"y\n"), ("f", b"plain\n"), ("k", b"k\n")])
    commit = pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id=c.id)
    started = layout.download(layout.Wire(client.channel), [fuse_pb2.CommitMount(commit=commit, alias="out")], tmp_path)
    out = tmp_path / "out"
    shutil.rmtree(out / "e")
    (out / "e").write_bytes(b"now a file\n")
    (out / "f").unlink()
    (out / "f").mkdir()
    (out / "f" / "g").write_bytes(b"inside\n")
    into = client.start_commit("data", parent=c.id)
    layout.upload(layout.Wire(client.channel), into, out, started)
    assert {i.file.path: client.get_file_bytes(("data", into.id), i.file.path)
            for i in client.walk_files(("data", into.id))} == {"/e": b"now a file\n", "/f/g": b"inside\n", "/k": b"k\n"}


class CountingStore(LocalBlockStore):
    """A local block store that counts the reads of each name."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: Counter[str] = Counter()

    async def get(self, name: str, offset: int = 0, size: int = 0) -> bytes:
        self.reads[name] += 1
        return await super().get(name, offset, size)


async def _walk_all(tree: Tree) -> list[str]:
    return [path async for path, _ in tree.walk("/", await tree.root_entry())]


async def test_pods_walking_one_tree_side_by_side_read_each_node_once(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "blocks")
    writer = NodeStore(store)
    builder = TreeBuilder(Tree(writer, ""), "c")
    for i in range(200):
        await builder.apply(f"/d{i % 20}/f{i}", FileDiff(FileKind.FILE, modified=1.0))
    root, nodes = builder.build()
    await writer.save(nodes, remember=False)  # as a large commit's nodes: not cached
    reader = NodeStore(store)
    walks = await asyncio.gather(*(_walk_all(Tree(reader, root)) for _ in range(2)))  # two pods' ListFileRefs
    assert walks[0] == walks[1] and len(walks[0]) == 220
    assert len(store.reads) == 21 and set(store.reads.values()) == {1}  # the root and 20 directories, once each


async def test_a_walk_goes_depth_first_in_name_order_from_any_directory(tmp_path: Path) -> None:
    files = ["/a/b/c/d", "/a/b/c2", "/a/b2", "/a.txt", "/b/x", "/a/b/c/e/f", "/z", "/a/a"]
    builder = TreeBuilder(Tree(NodeStore(LocalBlockStore(tmp_path / "blocks")), ""), "c")
    for path in sorted(files):
        await builder.apply(path, FileDiff(FileKind.FILE, modified=1.0))
    tree = builder.view()
    below = {"/".join(path.split("/")[:depth]) for path in files for depth in range(2, path.count("/") + 2)}

    def pre_order(under: str) -> list[str]:  # each name's subtree right after it, siblings by name
        names = sorted({p[len(under) + 1:].split("/")[0] for p in below if p.startswith(under + "/")})
        return [path for name in names for path in [f"{under}/{name}", *pre_order(f"{under}/{name}")]]

    assert await _walk_all(tree) == pre_order("")
    entry = await tree.lookup("/a/b")
    assert entry is not None
    assert [path async for path, _ in tree.walk("/a/b", entry)] == pre_order("/a/b")
    assert [path async for path, _ in tree.walk("/z", await tree.lookup("/z"))] == []  # a file has nothing below


async def test_a_node_load_goes_on_for_others_when_one_caller_is_cancelled(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "blocks")
    writer = NodeStore(store)
    builder = TreeBuilder(Tree(writer, ""), "c")
    await builder.apply("/f", FileDiff(FileKind.FILE, modified=1.0))
    root, nodes = builder.build()
    await writer.save(nodes, remember=False)
    reader = NodeStore(store)
    first = asyncio.ensure_future(reader.load(root))
    second = asyncio.ensure_future(reader.load(root))
    await asyncio.sleep(0)  # both are waiting for the one read
    first.cancel()
    assert list(await second) == ["f"]
    assert store.reads[NODE_PREFIX + root] == 1


def test_a_pod_says_what_each_step_cost_only_when_asked(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [(f"f{i}", b"%d\n" % i) for i in range(20)])
    client.create_pipeline(pipeline("timed", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)], parallelism=2,
                                    env={"PACH_SHIM_TIMES": "1"}))
    client.create_pipeline(pipeline("quiet", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
    client.flush_commit([("data", c.id)], timeout=TIMEOUT)
    timed = [line for line in b"".join(client.get_logs(client.list_job("timed")[0].job.id)).decode().splitlines()
             if "job-shim: steps " in line]
    assert sorted(line.split(" | ")[0] for line in timed) == ["0", "1"]  # one line per pod
    for line in timed:
        steps = dict(item.split("=") for item in line.split("job-shim: steps ")[1].split())
        assert list(steps) == ["before", "start", "layout", "code", "upload"]
        assert all(float(value) >= 0 for values in steps.values() for value in values.split(","))
    assert b"job-shim: steps" not in b"".join(client.get_logs(client.list_job("quiet")[0].job.id))
