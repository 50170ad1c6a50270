"""Reading a file over the GetFile stream (pachyderm_client/reading.py), against a real pachd
on loopback with the fast path off.

The file is made of blocks of known sizes (each put with no delimiter is one block), so
ranges can start and end exactly at, just before and just after the blocks' edges; a
copy into a descriptor must write exactly the file's bytes, after and before what the
output already holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import wrappers_pb2

from pachd.pfs import wire
from pachyderm_client import Client, NotFoundError, pfs, reading
from tests.support.pachd import PachdProcess

MIB = 1 << 20
BLOCKS = [3 * MIB + 1, 5 * MIB - 3, 1, 4 * MIB + 7]
"""The sizes of the file's blocks, in order."""
EDGES = [sum(BLOCKS[:n]) for n in range(len(BLOCKS) + 1)]


@pytest.fixture(scope="module")
def blocks_file(module_pachd: PachdProcess) -> bytes:
    """data/master/0 "f": one block per put of BLOCKS' sizes."""
    parts = [os.urandom(size) for size in BLOCKS]
    with Client(module_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as commit:
            for part in parts:
                client.put_file(commit, "f", part, delimiter=pfs.NONE)
    return b"".join(parts)


@pytest.fixture
def client(module_pachd: PachdProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    monkeypatch.setenv("PACH_LOCAL_FASTPATH", "0")
    with Client(module_pachd.address) as connected:
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


def test_a_copy_into_a_file_is_the_file_between_what_it_holds(client: Client, blocks_file: bytes,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    for offset, size in [(0, 0), (1, 0), (EDGES[1], 0), (EDGES[1] - 1, EDGES[2] - EDGES[1] + 2), (7, 12 * MIB)]:
        with open(out, "wb") as handle:
            handle.write(b"before")  # buffered: it lands first, and the file's bytes after it
            written = client.copy_file("data/master/0", "f", handle, offset, size)
            handle.write(b"after")
        expected = blocks_file[offset : offset + size if size else None]
        assert written == len(expected)
        assert out.read_bytes() == b"before" + expected + b"after", (offset, size)


def test_pachctl_get_file_over_the_stream_writes_exactly_the_file(module_pachd: PachdProcess, blocks_file: bytes,
                                                                  tmp_path: Path) -> None:
    big = os.urandom(17 * MIB + 5)  # several 8 MiB blocks
    with Client(module_pachd.address) as client:
        client.create_repo("big")
        with client.commit("big") as commit:
            client.put_file(commit, "big", big)
    env = {**os.environ, "ADDRESS": module_pachd.address, "PACH_LOCAL_FASTPATH": "0"}
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


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2 * MIB])
def test_replies_are_bytes_values_on_the_wire(size: int) -> None:
    data = os.urandom(size)
    encoded = wire.bytes_value(data)
    assert encoded == wrappers_pb2.BytesValue(value=data).SerializeToString()
    assert bytes(reading.value(encoded)) == data
    padded = wrappers_pb2.BytesValue(value=b"old").SerializeToString() + encoded  # a later field wins
    assert bytes(reading.value(padded)) == (data if size else b"old")


def test_a_missing_file_is_not_found(client: Client, tmp_path: Path) -> None:
    with open(tmp_path / "out", "wb") as handle, pytest.raises(NotFoundError):
        client.copy_file("data/master/0", "nothing", handle)
