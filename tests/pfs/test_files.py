"""Files through the public API: put (appends, delimiters, batches, URLs), get, list, delete."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from pachyderm_client import Client, FailedPreconditionError, InvalidArgumentError, NotFoundError
from pachyderm_client.proto import pfs_pb2


def test_put_appends_within_and_across_commits(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "sales", b"apple 1\n")
        client.put_file(("data", c.id), "sales", b"orange 2\n")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "sales", b"banana 3\n")
    assert client.get_file_bytes(("data", "master/0"), "sales") == b"apple 1\norange 2\n"
    assert client.get_file_bytes(("data", "master/1"), "sales") == b"apple 1\norange 2\nbanana 3\n"
    assert client.inspect_file(("data", "master"), "sales").size_bytes == 26


def test_reads_of_an_open_commit_see_its_writes(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"one\n")
    c = client.start_commit("data")
    client.put_file(("data", c.id), "f", b"two\n")
    client.put_file(("data", c.id), "dir/g", b"x")
    assert client.get_file_bytes(("data", c.id), "f") == b"one\ntwo\n"
    assert [f.file.path for f in client.list_file(("data", c.id))] == ["/dir", "/f"]


def test_implicit_directories_and_listing_modes(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("a/b/c", b"123"), ("a/b/d", b"45"), ("a/e", b"6"), ("top", b"")])
    root = {f.file.path: (f.file_type, f.size_bytes) for f in client.list_file(("data", "master"))}
    assert root == {"/a": (pfs_pb2.FILE_TYPE_DIR, 6), "/top": (pfs_pb2.FILE_TYPE_REGULAR, 0)}
    assert [f.file.path for f in client.list_file(("data", "master"), "a/b")] == ["/a/b/c", "/a/b/d"]
    for mode in (pfs_pb2.ListFile_FAST, pfs_pb2.ListFile_RECURSE):
        assert [f.file.path for f in client.list_file(("data", "master"), "a", mode=mode)] == ["/a/b", "/a/e"]
    info = client.inspect_file(("data", "master"), "a")
    assert info.file_type == pfs_pb2.FILE_TYPE_DIR and info.size_bytes == 6
    assert [f.path for f in info.children] == ["/a/b", "/a/e"]
    assert [f.file.path for f in client.list_file(("data", "master"), "a/e")] == ["/a/e"]


def test_get_with_offset_and_size(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"0123456789")
        client.put_file(("data", c.id), "f", b"abcdef")
    get = lambda **kw: client.get_file_bytes(("data", "master"), "f", **kw)  # noqa: E731
    assert get(offset=8) == b"89abcdef"
    assert get(offset=3, size=4) == b"3456"
    assert get(offset=9, size=3) == b"9ab"
    assert get(offset=100) == b""
    with pytest.raises(InvalidArgumentError):
        get(offset=-1)


def test_delete_file_and_directory(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("keep", b"k"), ("gone", b"g"), ("dir/x", b"x"), ("dir/y", b"y")])
    with client.commit("data") as c:
        client.delete_file(("data", c.id), "gone")
        client.delete_file(("data", c.id), "dir")
        client.put_file(("data", c.id), "dir/z", b"new")
        with pytest.raises(NotFoundError):
            client.delete_file(("data", c.id), "never_was")
    assert [f.file.path for f in client.list_file(("data", "master"))] == ["/dir", "/keep"]
    assert [f.file.path for f in client.list_file(("data", "master"), "dir")] == ["/dir/z"]
    with pytest.raises(NotFoundError):
        client.get_file_bytes(("data", "master"), "gone")
    assert client.get_file_bytes(("data", "master/0"), "gone") == b"g"  # the parent keeps it


def test_delete_then_put_in_one_commit_replaces(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"old\n")
    with client.commit("data") as c:
        client.delete_file(("data", c.id), "f")
        client.put_file(("data", c.id), "f", b"new\n")
    assert client.get_file_bytes(("data", "master"), "f") == b"new\n"


def test_delete_everything(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("a", b"1"), ("b/c", b"2")])
    with client.commit("data") as c:
        client.delete_file(("data", c.id), "/")
        client.put_file(("data", c.id), "fresh", b"3")
    assert [f.file.path for f in client.list_file(("data", "master"))] == ["/fresh"]


@pytest.mark.parametrize("path", ["../escape", "a/../../b", "/..", "a/./b", "nul\x00byte", "", "/"])
def test_bad_paths_are_refused_and_write_nothing(client: Client, path: str) -> None:
    client.create_repo("data")
    c = client.start_commit("data")
    with pytest.raises(InvalidArgumentError):
        client.put_files(("data", c.id), [("fine_before", b"1"), (path, b"x")])
    client.finish_commit(("data", c.id))
    assert client.list_file(("data", c.id)) == []


def test_file_and_directory_cannot_share_a_path(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x")
        client.put_file(("data", c.id), "d/g", b"y")
    c = client.start_commit("data")
    with pytest.raises(FailedPreconditionError):
        client.put_file(("data", c.id), "f/under", b"z")
    with pytest.raises(FailedPreconditionError):
        client.put_file(("data", c.id), "d", b"z")
    client.put_file(("data", c.id), "d/h", b"fine")
    client.finish_commit(("data", c.id))


def test_missing_things(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x")
    with pytest.raises(NotFoundError):
        client.get_file_bytes(("data", "master"), "nope")
    with pytest.raises(NotFoundError):
        client.get_file_bytes(("data", "master/7"), "f")
    with pytest.raises(NotFoundError):
        client.get_file_bytes(("nope", "master"), "f")
    with pytest.raises(NotFoundError):
        client.list_file(("data", "master"), "nope")
    with pytest.raises(InvalidArgumentError):
        client.get_file_bytes(("data", "master"), "/")


def test_many_small_files_in_one_stream(client: Client) -> None:
    client.create_repo("data")
    files = [(f"dir{i % 10}/file{i}", f"content {i}\n".encode()) for i in range(2000)]
    with client.commit("data") as c:
        client.put_files(("data", c.id), files)
    assert len(list(client.walk_files(("data", "master")))) == 2000
    assert client.get_file_bytes(("data", "master"), "dir7/file1237") == b"content 1237\n"
    assert client.inspect_repo("data").size_bytes == sum(len(d) for _, d in files)


def test_large_file_is_streamed_and_chunked_into_blocks(client: Client) -> None:
    client.create_repo("data")
    line = b"x" * 99 + b"\n"
    data = line * (200_000)  # 20 MB of lines: three blocks
    with client.commit("data") as c:
        client.put_file(("data", c.id), "big", data)
    reader = client.get_file(("data", "master"), "big")
    received = b"".join(reader)
    assert received == data


MIB = 1024 * 1024


@pytest.mark.parametrize("size", [MIB - 1, MIB, MIB + 1, 3 * MIB + 7, 8 * MIB + 5])
@pytest.mark.parametrize("delimiter", [pfs_pb2.NONE, pfs_pb2.LINE])
def test_files_around_the_small_file_and_block_sizes_round_trip(client: Client, size: int, delimiter: int) -> None:
    """Files just under, at and over the 1 MiB small-file packing limit and the
    8 MiB block size keep every byte (a file between the two once lost all but
    its tail)."""
    client.create_repo("data")
    data = bytes((i * 7 + 3) % 251 for i in range(256)) * (size // 256) + b"\n" * (size % 256)
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", data, delimiter=delimiter)
    assert client.inspect_file(("data", "master"), "f").size_bytes == size
    assert client.get_file_bytes(("data", "master"), "f") == data


def test_a_file_sent_in_one_message_keeps_every_byte(client: Client) -> None:
    """Other clients may send a whole file in a single PutFile message."""
    import grpc

    from pachyderm_client.proto import pfs_pb2_grpc

    client.create_repo("data")
    commit = client.start_commit("data")
    data = bytes(range(256)) * (3 * MIB // 256)
    with grpc.insecure_channel(client.address) as channel:
        request = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit, path="one"), value=data)
        pfs_pb2_grpc.APIStub(channel).PutFile(iter([request]))
    client.finish_commit(("data", commit.id))
    assert client.get_file_bytes(("data", commit.id), "one") == data


@pytest.fixture
def web_server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path != "/data.txt":
                self.send_error(404)
                return
            body = b"line one\nline two\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_put_file_from_a_url(client: Client, web_server: str) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file_url(("data", c.id), "fetched", f"{web_server}/data.txt")
        with pytest.raises(NotFoundError):
            client.put_file_url(("data", c.id), "missing", f"{web_server}/nothing")
        with pytest.raises(InvalidArgumentError):
            client.put_file_url(("data", c.id), "local", "file:///etc/passwd")
    assert client.get_file_bytes(("data", "master"), "fetched") == b"line one\nline two\n"


def test_make_directory(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.make_directory(("data", c.id), "empty")
    info = client.inspect_file(("data", "master"), "empty")
    assert info.file_type == pfs_pb2.FILE_TYPE_DIR and list(info.children) == []


def test_oversized_messages_are_refused(client: Client, pachd: object) -> None:
    """pachd refuses messages over its 64 MiB limit (checked with a client that would send them)."""
    import grpc

    from pachyderm_client.proto import pfs_pb2_grpc

    client.create_repo("data")
    commit = client.start_commit("data")
    options = [("grpc.max_send_message_length", 128 << 20)]
    with grpc.insecure_channel(client.address, options) as channel:
        request = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit, path="huge"), value=b"x" * (65 << 20))
        with pytest.raises(grpc.RpcError) as caught:
            pfs_pb2_grpc.APIStub(channel).PutFile(iter([request]))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(NotFoundError):
        client.inspect_file(("data", commit.id), "huge")
