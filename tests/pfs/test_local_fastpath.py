"""The same-machine fast path (pachd/local_fastpath.py, pachyderm_client/local.py).

Against a real pachd on loopback: reads through it return exactly get-file's
bytes, whatever the output (a regular file, an appending file, a pipe); the
client falls back to the gRPC stream when the socket is absent or refuses; a
token-protected pachd refuses a request without its token. In-process, on the
real stores: a put through it makes the same blocks and the same file as a put
through the PutFile stream, with the blocks durable before the metadata.
"""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from pachd.auth import AuthInterceptor, PodCredentials
from pachd.local_fastpath import LocalFastPath
from pachd.pfs import Pfs
from pachd.pfs.chunking import Delimiter
from pachd.storage.localdisk import LocalBlockStore
from pachyderm_client import Client, FailedPreconditionError, NotFoundError, PachydermError, local
from pachyderm_client.proto import pfs_pb2
from tests.pfs.test_sync_order import MIB, Log, check_order, lines, recorded, refs_of, stream  # noqa: F401
from tests.support.pachd import PachdProcess

__all__ = ["recorded"]

RANGES = [(0, 0), (0, 1), (5, 0), (3, 7), (MIB, 3 * MIB), (8 * MIB - 5, 10), (19 * MIB, 0), (40 * MIB, 0),
          (0, 40 * MIB)]


@pytest.fixture(scope="module")
def files(module_pachd: PachdProcess) -> dict[str, bytes]:
    """Files of every shape, put through the gRPC stream: many blocks, empty, appended, packed."""
    big = lines(20 * MIB)
    with Client(module_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as first:
            client.put_file(first, "big", big)
            client.put_file(first, "empty", b"")
            client.put_file(first, "appended", b"one\n")
            client.put_file(first, "appended", b"two\n")
            client.put_files(first, [(f"small/{n}", b"%d\n" % n) for n in range(20)])
        with client.commit("data") as second:
            client.put_file(second, "appended", b"three\n" * 1000)
    return {"big": big, "empty": b"", "appended": b"one\ntwo\n" + b"three\n" * 1000, "small/7": b"7\n"}


def fast(client: Client) -> local.LocalSocket:
    found = client._local_socket()
    assert found is not None, "pachd on loopback offers the fast path"
    return found


def test_reads_through_the_fast_path_are_get_files_bytes(module_pachd: PachdProcess, files: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    with Client(module_pachd.address) as client:
        socket_path = fast(client)
        for name, data in files.items():
            for offset, size in RANGES:
                expected = client.get_file_bytes("data/master/1", name, offset, size)
                assert expected == data[offset : offset + size if size else None]
                out = tmp_path / "out"
                with open(out, "wb") as handle:
                    written = socket_path.get("data", "master/1", name, handle.fileno(), offset=offset, size=size)
                assert written == len(expected)
                assert out.read_bytes() == expected, (name, offset, size)
        assert client.get_file_bytes("data/master/0", "appended") == b"one\ntwo\n"


def test_copy_file_writes_to_every_kind_of_output(module_pachd: PachdProcess, files: dict[str, bytes],
                                                  tmp_path: Path) -> None:
    big = files["big"]
    with Client(module_pachd.address) as client:
        fast(client)
        regular = tmp_path / "regular"
        with open(regular, "wb") as handle:
            handle.write(b"before")  # written through the buffer: lands first
            assert client.copy_file("data/master/1", "big", handle) == len(big)
        assert regular.read_bytes() == b"before" + big
        appending = tmp_path / "appending"
        appending.write_bytes(b"x")
        with open(appending, "ab") as handle:  # copy_file_range refuses O_APPEND: another way
            client.copy_file("data/master/1", "big", handle, offset=10, size=5 * MIB)
        assert appending.read_bytes() == b"x" + big[10 : 10 + 5 * MIB]
        read_end, write_end = os.pipe()
        received = bytearray()
        reader = threading.Thread(target=_drain, args=(read_end, received))
        reader.start()
        with open(write_end, "wb") as pipe:
            client.copy_file("data/master/1", "big", pipe)
        reader.join(timeout=120)
        assert bytes(received) == big
        memory = io.BytesIO()  # no descriptor: the gRPC stream
        assert client.copy_file("data/master/1", "appended", memory) == len(files["appended"])
        assert memory.getvalue() == files["appended"]


def _drain(fd: int, into: bytearray) -> None:
    with open(fd, "rb") as pipe:
        while chunk := pipe.read(MIB):
            into += chunk


def test_pachctl_puts_and_gets_through_the_fast_path(module_pachd: PachdProcess, files: dict[str, bytes],
                                                    tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.write_bytes(files["big"][: 9 * MIB] + b"no newline at the end")
    env = {**os.environ, "ADDRESS": module_pachd.address}
    env.pop("PACH_LOCAL_FASTPATH", None)
    pachctl = [sys.executable, "-m", "pachctl.main", "-q"]
    subprocess.run([*pachctl, "put-file", "data", "cli", "f", "-c", "-f", str(source)], env=env, check=True)
    for repo, commit, path, data in (("data", "cli/0", "f", source.read_bytes()),
                                     ("data", "master/1", "big", files["big"])):
        with open(tmp_path / "out", "wb") as out:
            subprocess.run([*pachctl, "get-file", repo, commit, path], env=env, check=True, stdout=out)
        assert (tmp_path / "out").read_bytes() == data
        piped = subprocess.run([*pachctl, "get-file", repo, commit, path], env=env, check=True,
                               stdout=subprocess.PIPE).stdout
        assert piped == data
    logged = module_pachd.logs()
    assert "fast path put of data/cli/0 f" in logged and "fast path get of data/cli/0 f" in logged


def test_errors_through_the_fast_path_are_get_files(module_pachd: PachdProcess, files: dict[str, bytes],
                                                    tmp_path: Path) -> None:
    with Client(module_pachd.address) as client, open(tmp_path / "out", "wb") as handle:
        for name in ("missing", "small"):  # no such file; a directory
            with pytest.raises(PachydermError) as streamed:
                client.get_file_bytes("data/master/1", name)
            with pytest.raises(PachydermError) as passed:
                fast(client).get("data", "master/1", name, handle.fileno())
            assert type(passed.value) is type(streamed.value)
            assert (passed.value.code, passed.value.message) == (streamed.value.code, streamed.value.message)
        with pytest.raises(NotFoundError):
            client.copy_file("data/master/9", "big", handle)


def test_the_client_falls_back_to_grpc_when_the_socket_is_absent_or_refuses(
        module_pachd: PachdProcess, files: dict[str, bytes], tmp_path: Path) -> None:
    refusing = tmp_path / "refusing.sock"
    bound = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    bound.bind(str(refusing))  # bound, never listening: connections are refused
    try:
        for path in (tmp_path / "absent.sock", refusing):
            with Client(module_pachd.address) as client:
                fast(client)
                client._fast_path = unreachable = local.LocalSocket(str(path), None)
                with pytest.raises(local.Unreachable):
                    unreachable.get("data", "master/1", "big", 1)
                with open(tmp_path / "out", "wb") as handle:
                    assert client.copy_file("data/master/1", "appended", handle) == len(files["appended"])
                assert (tmp_path / "out").read_bytes() == files["appended"]
                source = tmp_path / "source"
                source.write_bytes(b"fallback\n")
                with client.commit("data", path.stem) as target:
                    client.put_local_file(target, "f", source)
                assert client.get_file_bytes(target, "f") == b"fallback\n"
    finally:
        bound.close()


def test_only_loopback_addresses_use_the_fast_path() -> None:
    for address in ("127.0.0.1:650", "localhost:30650", "0.0.0.0:30650", "[::1]:650", "127.3.4.5:1"):
        assert local.is_loopback(address), address
    for address in ("10.0.0.1:650", "pachd:650", "example.com:30650", "[2001:db8::1]:650"):
        assert not local.is_loopback(address), address
    with Client("10.255.255.1:30650") as remote:  # never dialled: the address alone rules it out
        assert remote._local_socket() is None


def test_puts_through_the_fast_path_append_like_the_stream(module_pachd: PachdProcess, tmp_path: Path) -> None:
    data = lines(10 * MIB)
    source = tmp_path / "source"
    source.write_bytes(data)
    with Client(module_pachd.address) as client:
        fast(client)
        client.create_repo("puts")
        with client.commit("puts") as first:
            client.put_local_file(first, "f", source)
            client.put_local_file(first, "f", source)  # appends within a commit
        with client.commit("puts") as second:
            client.put_local_file(second, "f", source, delimiter=pfs_pb2.NONE)  # and across commits
            (tmp_path / "empty").write_bytes(b"")
            client.put_local_file(second, "empty", tmp_path / "empty")
        assert client.get_file_bytes(second, "f") == data * 3
        assert client.inspect_file(second, "f").size_bytes == 3 * len(data)
        assert client.inspect_file(second, "empty").size_bytes == 0
        with open(source, "rb") as handle, pytest.raises(FailedPreconditionError) as finished:
            fast(client).put("puts", first.id, "f", handle.fileno(), pfs_pb2.LINE)
        with pytest.raises(FailedPreconditionError) as streamed:
            client.put_file(first, "f", data)
        assert finished.value.message == streamed.value.message


def test_a_pachd_with_a_token_refuses_fast_path_requests_without_it(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("fast-secret\n")
    token_file.chmod(0o600)
    server = PachdProcess(tmp_path / "data", extra_args=["--auth-token-file", str(token_file)]).start()
    try:
        with Client(server.address, auth_token="fast-secret") as client:
            path = fast(client).path
            assert os.stat(path).st_mode & 0o777 == 0o600
            client.create_repo("data")
            with client.commit("data") as target:
                client.put_file(target, "f", b"secret\n")
            source = tmp_path / "source"
            source.write_bytes(b"more\n")
            out = tmp_path / "out"
            with open(out, "wb") as handle:
                for token in (None, "wrong"):
                    anonymous = local.LocalSocket(path, token)
                    with pytest.raises(PachydermError) as refused:
                        anonymous.get("data", target.id, "f", handle.fileno())
                    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
                    with open(source, "rb") as put, pytest.raises(PachydermError) as refused:
                        anonymous.put("data", "master", "g", put.fileno(), pfs_pb2.LINE)
                    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
                assert local.LocalSocket(path, "fast-secret").get("data", target.id, "f", handle.fileno()) == 7
            assert out.read_bytes() == b"secret\n"
        with Client(server.address, auth_token="") as anonymous_client:
            assert anonymous_client._local_socket() is None  # not even told where it is
    finally:
        server.stop()


# -- in-process, on the recorded stores of test_sync_order ---------------------


async def test_a_put_through_the_fast_path_equals_a_stream_put_and_is_durable_first(
        recorded: tuple[Pfs, Log], tmp_path: Path) -> None:
    pfs, log = recorded
    assert isinstance(pfs.blocks, LocalBlockStore)
    credentials = PodCredentials(b"secret")
    auth = AuthInterceptor(admin_token="", credentials=credentials)
    server = LocalFastPath(pfs=pfs, store=pfs.blocks, auth=auth, credentials=credentials, data_dir=tmp_path)
    path = await server.start()
    try:
        await pfs.repos.create("data", [])
        files = [("/lines", lines(20 * MIB), Delimiter.LINE), ("/whole", os.urandom(3 * MIB), Delimiter.NONE),
                 ("/small", b"a\nb\n", Delimiter.LINE), ("/empty", b"", Delimiter.LINE)]
        passed = await pfs.commits.start("data", "passed", ())
        client = local.LocalSocket(str(path), None)
        for name, data, delimiter in files:
            source = tmp_path / name.strip("/")
            source.write_bytes(data)
            with open(source, "rb") as handle:
                await asyncio.to_thread(client.put, "data", passed.id, name, handle.fileno(), delimiter.value)
        check_order(log, await refs_of(pfs, "data", passed.id))  # fresh blocks: each synced before its txn
        with open(source, "rb") as handle, pytest.raises(PachydermError) as pod:  # pods stay on gRPC
            await asyncio.to_thread(local.LocalSocket(str(path), credentials.token("job1")).put,
                                    "data", passed.id, "/pod", handle.fileno(), 0)
        assert pod.value.code == grpc.StatusCode.PERMISSION_DENIED
        streamed = await pfs.commits.start("data", "streamed", ())
        await pfs.files.put(stream("data", streamed.id, files))
        for name, data, _ in files:
            assert b"".join([c async for c in pfs.files.get("data", passed.id, name)]) == data
            same = await pfs.files.refs_of("data", streamed.id, name)
            assert await pfs.files.refs_of("data", passed.id, name) == same
    finally:
        await server.stop()
    assert not path.exists()
