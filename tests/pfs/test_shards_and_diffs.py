"""Shards partition a commit's data exactly; diffs show only what changed; blocks dedup."""

from __future__ import annotations

import hashlib

import grpc

import pytest

from pachyderm_client import Client, NotFoundError
from pachyderm_client.proto import pfs_pb2


def shard(file_number: int = 0, file_modulus: int = 0, block_number: int = 0, block_modulus: int = 0) -> pfs_pb2.Shard:
    return pfs_pb2.Shard(file_number=file_number, file_modulus=file_modulus, block_number=block_number,
                         block_modulus=block_modulus)


def contents(client: Client, commit: str, **kwargs: object) -> dict[str, bytes]:
    found = {}
    for info in client.walk_files(("data", commit), **kwargs):  # type: ignore[arg-type]
        found[info.file.path] = client.get_file_bytes(("data", commit), info.file.path, **kwargs)
    return found


@pytest.fixture
def many_files(client: Client) -> dict[str, bytes]:
    client.create_repo("data")
    files = {f"/top{i}/f{j}": f"{i}-{j}\n".encode() * (j + 1) for i in range(12) for j in range(3)}
    files.update({f"/flat{i}": b"y" * i for i in range(20)})
    with client.commit("data") as c:
        client.put_files(("data", c.id), files.items())
    return files


@pytest.mark.parametrize("modulus", [1, 2, 3, 5])
def test_file_shards_partition_the_files(client: Client, many_files: dict[str, bytes], modulus: int) -> None:
    seen: dict[str, bytes] = {}
    for number in range(modulus):
        part = contents(client, "master", shard=shard(file_number=number, file_modulus=modulus))
        assert not set(part) & set(seen)
        seen.update(part)
        tops = {path.split("/")[1] for path in part}
        for top in tops:  # a top-level directory is never split
            assert all(p in part for p in many_files if p.split("/")[1] == top)
    assert seen == many_files


@pytest.mark.parametrize("modulus", [2, 4])
def test_block_shards_partition_the_data(client: Client, modulus: int) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        for i in range(30):  # thirty separate puts: thirty blocks in one file
            client.put_file(("data", c.id), "log", f"record {i}\n".encode())
    whole = client.get_file_bytes(("data", "master"), "log")
    parts = []
    for number in range(modulus):
        try:
            parts.append(client.get_file_bytes(("data", "master"), "log", shard=shard(block_number=number,
                                                                                        block_modulus=modulus)))
        except NotFoundError:
            parts.append(b"")
    lines = sorted(line for part in parts for line in part.splitlines())
    assert lines == sorted(whole.splitlines())
    sizes = [client.inspect_file(("data", "master"), "log", shard=shard(block_number=n, block_modulus=modulus)).size_bytes
             for n in range(modulus) if parts[n]]
    assert sum(sizes) == len(whole)


def test_diff_shows_only_what_changed(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("grows", b"old\n"), ("same", b"s\n"), ("replaced", b"r1\n")])
    with client.commit("data") as c:
        client.put_file(("data", c.id), "grows", b"new\n")
        client.delete_file(("data", c.id), "replaced")
        client.put_file(("data", c.id), "replaced", b"r2\n")
        client.put_file(("data", c.id), "dir/added", b"a\n")
    changed = {f.file.path: f.size_bytes for f in client.list_file(("data", "master/1"), from_commit="master/0")}
    assert changed == {"/dir": 2, "/grows": 4, "/replaced": 3}
    assert client.get_file_bytes(("data", "master/1"), "grows", from_commit="master/0") == b"new\n"
    assert client.get_file_bytes(("data", "master/1"), "grows", from_commit="master/0", full_file=True) == b"old\nnew\n"
    assert client.get_file_bytes(("data", "master/1"), "replaced", from_commit="master/0") == b"r2\n"
    with pytest.raises(NotFoundError):
        client.get_file_bytes(("data", "master/1"), "same", from_commit="master/0")
    assert client.list_file(("data", "master/1"), from_commit="master/1") == []


def test_same_bytes_are_stored_once(client: Client) -> None:
    from pachyderm_client.proto import pfs_pb2_grpc

    blocks = pfs_pb2_grpc.BlockAPIStub(client.channel)
    count = lambda: len(blocks.ListBlock(pfs_pb2.ListBlockRequest()).block_info)  # noqa: E731
    client.create_repo("data")
    data = hashlib.sha512(b"seed").digest() * (20 * 1024 * 1024 // 64)  # 20 MiB: three blocks
    before = count()
    with client.commit("data") as c:
        client.put_file(("data", c.id), "one", data, delimiter=pfs_pb2.NONE)
    after_first = count()
    with client.commit("data") as c:
        client.put_file(("data", c.id), "two", data, delimiter=pfs_pb2.NONE)
        client.put_file(("data", c.id), "one", data, delimiter=pfs_pb2.NONE)
    assert after_first - before <= 3
    assert count() == after_first
    assert client.get_file_bytes(("data", "master"), "one") == data * 2


def test_block_api_round_trip(client: Client) -> None:
    from pachyderm_client.proto import pfs_pb2_grpc

    stub = pfs_pb2_grpc.BlockAPIStub(client.channel)
    lines = b"".join(b"%08d\n" % i for i in range(2_000_000))  # 18 MB of lines
    refs = list(stub.PutBlock(iter([pfs_pb2.PutBlockRequest(value=lines[i:i + (1 << 20)], delimiter=pfs_pb2.LINE)
                                    for i in range(0, len(lines), 1 << 20)])).block_ref)
    assert len(refs) == 3
    assert all(stub.InspectBlock(pfs_pb2.InspectBlockRequest(block=r.block)).size_bytes == r.range.upper for r in refs)
    back = b"".join(v.value for r in refs for v in stub.GetBlock(pfs_pb2.GetBlockRequest(block=r.block)))
    assert back == lines
    assert all(b"".join(v.value for v in stub.GetBlock(pfs_pb2.GetBlockRequest(block=r.block))).endswith(b"\n")
               for r in refs)
    part = b"".join(v.value for v in stub.GetBlock(pfs_pb2.GetBlockRequest(block=refs[0].block, offset_bytes=9,
                                                                            size_bytes=9)))
    assert part == b"00000001\n"


def test_block_api_diffs_and_deletes(client: Client) -> None:
    from pachyderm_client.proto import pfs_pb2_grpc

    stub = pfs_pb2_grpc.BlockAPIStub(client.channel)
    diff = pfs_pb2.Diff(commit=pfs_pb2.Commit(repo=pfs_pb2.Repo(name="r"), id="master/0"), shard=3)
    info = pfs_pb2.DiffInfo(diff=diff, branch="master", size_bytes=42)
    stub.CreateDiff(info)
    assert stub.InspectDiff(pfs_pb2.InspectDiffRequest(diff=diff)) == info
    assert list(stub.ListDiff(pfs_pb2.ListDiffRequest(shard=3))) == [info]
    assert list(stub.ListDiff(pfs_pb2.ListDiffRequest(shard=4))) == []
    stub.DeleteDiff(pfs_pb2.DeleteDiffRequest(diff=diff))
    with pytest.raises(grpc.RpcError) as caught:
        stub.InspectDiff(pfs_pb2.InspectDiffRequest(diff=diff))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    refs = stub.PutBlock(iter([pfs_pb2.PutBlockRequest(value=b"doomed")])).block_ref
    stub.DeleteBlock(pfs_pb2.DeleteBlockRequest(block=refs[0].block))
    with pytest.raises(grpc.RpcError) as caught:
        stub.InspectBlock(pfs_pb2.InspectBlockRequest(block=refs[0].block))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.InspectBlock(pfs_pb2.InspectBlockRequest(block=pfs_pb2.Block(hash="../../etc/passwd")))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
