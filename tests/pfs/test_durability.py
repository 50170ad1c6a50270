"""pachd stopping (SIGTERM) or crashing (kill -9) loses no finished commit; interrupted writes leave nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest

from pachyderm_client import Client, NotFoundError
from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc
from tests.support.pachd import PachdProcess


def fill(client: Client) -> dict[str, bytes]:
    client.create_repo("data")
    files = {f"/f{i}": hashlib.sha256(str(i).encode()).digest() * (i + 1) for i in range(50)}
    with client.commit("data") as c:
        client.put_files(("data", c.id), files.items())
    return files


def read_all(client: Client, commit: str) -> dict[str, bytes]:
    return {f.file.path: client.get_file_bytes(("data", commit), f.file.path) for f in client.walk_files(("data", commit))}


@pytest.mark.parametrize("how", ["kill", "stop"])
def test_finished_commits_survive(own_pachd_any: PachdProcess, how: str) -> None:
    own_pachd = own_pachd_any
    with Client(own_pachd.address) as client:
        files = fill(client)
        open_commit = client.start_commit("data")
        client.put_file(("data", open_commit.id), "/pending", b"in progress")
    if how == "kill":
        own_pachd.kill()
    else:
        assert own_pachd.stop() == 0
    own_pachd.start()
    with Client(own_pachd.address) as client:
        assert read_all(client, "master/0") == files
        info = client.inspect_commit(("data", open_commit.id))
        assert info.commit_type == pfs_pb2.COMMIT_TYPE_WRITE
        client.put_file(("data", open_commit.id), "/more", b"after restart")
        client.finish_commit(("data", open_commit.id))
        assert client.get_file_bytes(("data", "master"), "pending") == b"in progress"


def test_interrupted_put_file_writes_nothing(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        commit = client.start_commit("data")

        def requests() -> Iterator[pfs_pb2.PutFileRequest]:
            target = pfs_pb2.File(commit=commit, path="half")
            yield pfs_pb2.PutFileRequest(file=target, value=b"x" * (4 << 20))
            yield pfs_pb2.PutFileRequest(value=b"y" * (4 << 20))
            raise RuntimeError("the client dies mid-stream")

        stub = pfs_pb2_grpc.APIStub(client.channel)
        with pytest.raises(Exception):
            stub.PutFile(requests())
        with pytest.raises(NotFoundError):
            client.inspect_file(("data", commit.id), "half")
        client.put_file(("data", commit.id), "whole", b"fine")
        client.finish_commit(("data", commit.id))
        assert [f.file.path for f in client.list_file(("data", commit.id))] == ["/whole"]


def test_crash_during_put_file_leaves_the_commit_consistent(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        commit = client.start_commit("data")
        client.put_file(("data", commit.id), "before", b"kept")

        def requests() -> Iterator[pfs_pb2.PutFileRequest]:
            yield pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit, path="during"), value=b"z" * (1 << 20))
            own_pachd.kill()
            yield pfs_pb2.PutFileRequest(value=b"z")

        with pytest.raises(Exception):
            pfs_pb2_grpc.APIStub(client.channel).PutFile(requests())
    own_pachd.start()
    with Client(own_pachd.address) as client:
        client.finish_commit(("data", commit.id))
        assert [f.file.path for f in client.list_file(("data", commit.id))] == ["/before"]
