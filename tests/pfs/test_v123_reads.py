"""Reads as Pachyderm v1.2.3's own PFS tests pin them (server_test.go at that
tag): long path components, inspecting the root and directories, sharded and
full-file listings of directories, and FAST listings without sizes."""

from __future__ import annotations

import pytest

from pachyderm_client import Client, NotFoundError
from pachyderm_client.proto import pfs_pb2

# TestPutFileLongName's name: 1,344 bytes in one component, punctuation included.
LONG_NAME = "oaidhzoshd()&)(@*^$@(#)oandoancoasid1)(&@$)(@U)" * 28


def test_long_path_components_are_stored_and_read_back(client: Client) -> None:
    client.create_repo("test")
    commit = client.start_commit("test")
    client.put_file(("test", commit.id), LONG_NAME, b"foo\n")
    client.put_file(("test", commit.id), f"{'d' * 300}/{'f' * 400}", b"bar\n")
    client.finish_commit(("test", commit.id))
    assert client.get_file_bytes(("test", commit.id), LONG_NAME) == b"foo\n"
    assert client.inspect_file(("test", commit.id), LONG_NAME).size_bytes == 4
    assert client.get_file_bytes(("test", commit.id), f"{'d' * 300}/{'f' * 400}") == b"bar\n"
    assert sorted(i.file.path for i in client.list_file(("test", commit.id), "/")) == sorted([f"/{LONG_NAME}", f"/{'d' * 300}"])


def test_inspect_file_of_the_root_and_of_directories(client: Client) -> None:
    client.create_repo("test")
    with client.commit("test") as c:
        client.put_files(("test", c.id), [("dir/1", b"foo\n"), ("dir/2", b"foo\n")])
    for root in ("", "/"):  # v1.2.3 keeps no entry for the root: it cannot be inspected
        with pytest.raises(NotFoundError):
            client.inspect_file(("test", c.id), root)
    assert len(client.list_file(("test", c.id), "")) == 1  # but it can be listed
    info = client.inspect_file(("test", c.id), "dir")
    assert (info.file.path, info.file_type) == ("/dir", pfs_pb2.FILE_TYPE_DIR)
    assert [f.path for f in info.children] == ["/dir/1", "/dir/2"]
    assert client.inspect_file(("test", c.id), "dir/1").file_type == pfs_pb2.FILE_TYPE_REGULAR
    with client.commit("test") as c:
        client.put_file(("test", c.id), "dir/3", b"foo\n")
    assert len(client.inspect_file(("test", c.id), "dir").children) == 3
    with client.commit("test") as c:
        client.delete_file(("test", c.id), "dir/2")
    assert [f.path for f in client.inspect_file(("test", c.id), "dir").children] == ["/dir/1", "/dir/3"]


def test_sharded_listing_of_a_subdirectory(client: Client) -> None:
    """Each shard lists all the files of the folders it holds, and for the other
    folders answers NOT_FOUND, as v1.2.3 did; over all shards, every file once."""
    client.create_repo("test")
    with client.commit("test") as c:
        client.put_files(("test", c.id), [(f"dir{i}/file{j}", b"foo\n") for i in range(4) for j in range(10)])
    seen: list[str] = []
    for number in range(4):
        shard = pfs_pb2.Shard(file_number=number, file_modulus=4)
        for folder in range(4):
            try:
                infos = client.list_file(("test", c.id), f"dir{folder}", shard=shard)
            except NotFoundError:
                continue
            assert len(infos) == 10
            seen += [i.file.path for i in infos]
    assert sorted(seen) == sorted(f"/dir{i}/file{j}" for i in range(4) for j in range(10))


def test_full_file_listing_of_a_directory_since_a_commit(client: Client) -> None:
    """With full_file, a directory in which anything changed since from_commit
    lists all its files, whole (v1.2.3's FullFileDir)."""
    client.create_repo("test")
    with client.commit("test") as c:
        client.put_files(("test", c.id), [("file0", b"foo"), ("dir/a", b"a"), ("still", b"same")])
    assert len(client.list_file(("test", "master"), "", full_file=True)) == 3
    with client.commit("test") as c:
        client.put_files(("test", c.id), [("file1", b"bar"), ("file0", b"more")])
    full = client.list_file(("test", "master"), "", from_commit="master/0", full_file=True)
    assert sorted((i.file.path, i.size_bytes) for i in full) == [("/dir", 1), ("/file0", 7), ("/file1", 3),
                                                                  ("/still", 4)]
    diff = client.list_file(("test", "master"), "", from_commit="master/0")
    assert sorted((i.file.path, i.size_bytes) for i in diff) == [("/file0", 4), ("/file1", 3)]
    with client.commit("test") as c:
        client.put_file(("test", c.id), "dir/b", b"bb")
    full = client.list_file(("test", "master"), "dir", from_commit="master/1", full_file=True)
    assert sorted((i.file.path, i.size_bytes) for i in full) == [("/dir/a", 1), ("/dir/b", 2)]
    for info in client.list_file(("test", "master"), "", from_commit="master/0", full_file=True):
        if info.file_type == pfs_pb2.FILE_TYPE_REGULAR:  # what the listing shows can be read, whole, the same way
            data = client.get_file_bytes(("test", "master"), info.file.path, from_commit="master/0", full_file=True)
            assert len(data) == info.size_bytes == client.inspect_file(
                ("test", "master"), info.file.path, from_commit="master/0", full_file=True).size_bytes
    with pytest.raises(NotFoundError):  # nothing changed in dir/ since master/2: nothing to show
        client.get_file_bytes(("test", "master"), "dir/a", from_commit="master/2", full_file=True)
    recursed = client.list_file(("test", "master"), "", from_commit="master/1", full_file=True,
                                mode=pfs_pb2.ListFile_RECURSE)
    assert sorted((i.file.path, i.size_bytes) for i in recursed) == [("/dir", 3), ("/file0", 7), ("/file1", 3),
                                                                      ("/still", 4)]


def test_fast_listing_reports_no_sizes(client: Client) -> None:
    client.create_repo("test")
    with client.commit("test") as c:
        client.put_files(("test", c.id), [("dir/1", b"foo\n"), ("dir/2", b"foo\n")])
    assert len(client.list_file(("test", c.id), "dir", mode=pfs_pb2.ListFile_FAST)) == 2
    with client.commit("test") as c:
        client.put_files(("test", c.id), [("foo", b"foo\n"), ("bar", b"foo\n")])
    infos = client.list_file(("test", c.id), "", mode=pfs_pb2.ListFile_FAST)
    assert sorted(i.file.path for i in infos) == ["/bar", "/dir", "/foo"]
    assert [i.size_bytes for i in infos] == [0, 0, 0]
    assert {i.file.path: i.size_bytes for i in client.list_file(("test", c.id), "")} == {"/bar": 4, "/dir": 8, "/foo": 4}
