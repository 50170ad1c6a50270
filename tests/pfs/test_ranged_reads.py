"""Reading a file over GetFile streams: ranges of it, and several streams at once
(pachyderm_client/ranges.py), against a real pachd on loopback with the fast path off.

The file is made of blocks of known sizes (each put with no delimiter is one block), so
ranges can start and end exactly at, just before and just after the blocks' edges; a
copy over several streams must write exactly the file's bytes wherever its ranges fall,
and a stream that fails or comes up short must fail the copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import wrappers_pb2

from pachd.pfs import wire
from pachyderm_client import Client, DataLossError, NotFoundError, pfs, ranges
from tests.support.pachd import PachdProcess

MIB = 1 << 20
BLOCKS = [3 * MIB + 1, 5 * MIB - 3, 1, 4 * MIB + 7]
"""The sizes of the file's blocks, in order."""
EDGES = [sum(BLOCKS[:n]) for n in range(len(BLOCKS) + 1)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PachdProcess]:
    started = PachdProcess(tmp_path_factory.mktemp("ranged") / "data").start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def blocks_file(server: PachdProcess) -> bytes:
    """data/master/0 "f": one block per put of BLOCKS' sizes."""
    parts = [os.urandom(size) for size in BLOCKS]
    with Client(server.address) as client:
        client.create_repo("data")
        with client.commit("data") as commit:
            for part in parts:
                client.put_file(commit, "f", part, delimiter=pfs.NONE)
    return b"".join(parts)


@pytest.fixture
def client(server: PachdProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("PACH_LOCAL_FASTPATH", "0")
    with Client(server.address) as connected:
        yield connected


def _around_edges() -> list[tuple[int, int]]:
    """(offset, size) pairs starting and ending on, just before and just after every block edge."""
    points = sorted({max(0, edge + d) for edge in EDGES for d in (-1, 0, 1)})
    return [(start, end - start) for start in points for end in points if end > start]


def test_ranges_give_the_exact_bytes_across_block_edges(client: Client, blocks_file: bytes) -> None:
    for offset, size in _around_edges():
        assert client.get_file_bytes("data/master/0", "f", offset, size) == blocks_file[offset : offset + size], \
            (offset, size)
    assert client.get_file_bytes("data/master/0", "f", EDGES[-1] - 2, 0) == blocks_file[-2:]
    assert client.get_file_bytes("data/master/0", "f", 5, 10 * EDGES[-1]) == blocks_file[5:]  # past the end
    assert client.get_file_bytes("data/master/0", "f", EDGES[-1] + 3, 0) == b""


@pytest.mark.parametrize("streams", [2, 3, 4, 7])
def test_a_copy_over_several_streams_is_the_file(client: Client, blocks_file: bytes, tmp_path: Path,
                                                 streams: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "RANGED_FROM", 4)  # every copy here is ranged, its ranges across the edges
    monkeypatch.setenv("PACH_GET_STREAMS", str(streams))
    out = tmp_path / "out"
    for offset, size in [(0, 0), (1, 0), (EDGES[1], 0), (EDGES[1] - 1, EDGES[2] - EDGES[1] + 2), (7, 12 * MIB)]:
        with open(out, "wb") as handle:
            handle.write(b"before")  # buffered: it lands first, and the ranges after it
            written = client.copy_file("data/master/0", "f", handle, offset, size)
            handle.write(b"after")
        expected = blocks_file[offset : offset + size if size else None]
        assert written == len(expected)
        assert out.read_bytes() == b"before" + expected + b"after", (offset, size)


def test_ranges_fall_on_the_block_edges_when_planned_there(client: Client, blocks_file: bytes, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "RANGED_FROM", 4)
    span = EDGES[1] * 2  # two ranges of EDGES[1] bytes: the first ends where the first block does
    assert ranges.plan(0, span, 2, to_end=False) == [(0, EDGES[1]), (EDGES[1], EDGES[1])]
    with open(tmp_path / "out", "wb") as handle:
        file = pfs.as_commit("data/master/0")
        assert ranges.copy(lambda at, count: client._get_values(file, "f", at, count), handle.fileno(),
                           0, span, 2, to_end=False) == span
    assert (tmp_path / "out").read_bytes() == blocks_file[:span]


def test_outputs_that_take_no_placed_writes_get_one_stream(client: Client, blocks_file: bytes, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "RANGED_FROM", 4)
    monkeypatch.setenv("PACH_GET_STREAMS", "3")
    appending = tmp_path / "appending"
    appending.write_bytes(b"x")
    with open(appending, "ab") as handle:
        assert ranges.position(handle.fileno()) is None
        client.copy_file("data/master/0", "f", handle)
    assert appending.read_bytes() == b"x" + blocks_file
    read_end, write_end = os.pipe()
    assert ranges.position(write_end) is None
    os.close(read_end)
    os.close(write_end)


def test_pachctl_get_file_over_several_streams_writes_exactly_the_file(server: PachdProcess, blocks_file: bytes,
                                                                       tmp_path: Path) -> None:
    big = os.urandom(ranges.RANGED_FROM + 3 * MIB + 5)  # ranged by pachctl's own threshold
    with Client(server.address) as client:
        client.create_repo("big")
        with client.commit("big") as commit:
            client.put_file(commit, "big", big)
    env = {**os.environ, "ADDRESS": server.address, "PACH_LOCAL_FASTPATH": "0", "PACH_GET_STREAMS": "3"}
    pachctl = [sys.executable, "-m", "pachctl.main", "-q", "get-file"]
    for name, path, data in (("big", "big", big), ("data", "f", blocks_file)):
        with open(tmp_path / "out", "wb") as out:
            subprocess.run([*pachctl, name, "master/0", path], env=env, check=True, stdout=out)
        assert (tmp_path / "out").read_bytes() == data
        piped = subprocess.run([*pachctl, name, "master/0", path], env=env, check=True,
                               stdout=subprocess.PIPE).stdout
        assert piped == data
    missing = subprocess.run([*pachctl, "big", "master/0", "nothing"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    assert missing.returncode == 1


class _Failing(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE


class _Stream:
    """A stand-in for a GetFile call: `data`'s bytes in pieces, failing after `fail_after` of them."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self.data, self.fail_after, self.cancelled = data, fail_after, False

    def __iter__(self) -> Iterator[memoryview]:
        for n, start in enumerate(range(0, len(self.data), 1000)):
            if n == self.fail_after:
                raise _Failing()
            yield memoryview(self.data[start : start + 1000])

    def cancel(self) -> None:
        self.cancelled = True


def test_a_failing_or_short_range_fails_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "RANGED_FROM", 4)
    data = os.urandom(100_000)
    streams: list[_Stream] = []

    def opening(fail: int | None, short: int | None) -> ranges.Stream:
        def open_stream(at: int, count: int) -> Iterable[memoryview]:
            piece = data[at : at + count if count else None]
            index = len(streams)
            streams.append(_Stream(piece[: -5] if index == short else piece, 3 if index == fail else None))
            return streams[-1]
        return open_stream

    with open(tmp_path / "out", "wb") as handle:
        with pytest.raises(_Failing):
            ranges.copy(opening(1, None), handle.fileno(), 0, len(data), 3, to_end=True)
        assert any(stream.cancelled for stream in streams)
        streams.clear()
        with pytest.raises(DataLossError):
            ranges.copy(opening(None, 0), handle.fileno(), 0, len(data), 3, to_end=True)
        streams.clear()
        assert ranges.copy(opening(None, None), handle.fileno(), 0, len(data), 3, to_end=True) == len(data)
    assert (tmp_path / "out").read_bytes()[: len(data)] == data


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2 * MIB])
def test_replies_are_bytes_values_on_the_wire(size: int) -> None:
    data = os.urandom(size)
    encoded = wire.bytes_value(data)
    assert encoded == wrappers_pb2.BytesValue(value=data).SerializeToString()
    assert bytes(ranges.value(encoded)) == data
    padded = wrappers_pb2.BytesValue(value=b"old").SerializeToString() + encoded  # a later field wins
    assert bytes(ranges.value(padded)) == (data if size else b"old")


def test_a_missing_file_is_not_found_on_every_path(client: Client, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACH_GET_STREAMS", "3")
    with open(tmp_path / "out", "wb") as handle, pytest.raises(NotFoundError):
        client.copy_file("data/master/0", "nothing", handle)
