"""Records longer than a block, and puts with no delimiter, in bounded memory.

A file with no newline under the default LINE delimiter, and any put with
delimiter NONE, is one block as in v1.2.3 (so block-sharded reads see each
put whole), streamed through a temporary file: pachd's memory per stream
stays under a few block sizes whatever the input. A failed stream leaves no
temporary file behind, and pachd sweeps what a crash left at start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client, NotFoundError
from pachyderm_client.proto import pfs_pb2
from tests.support.memory import process_memory
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

MIB = 1 << 20
NO_NEWLINE = 512 * MIB
# pachd itself (~75 MiB), two 8 MiB steps in flight, gRPC's window, and
# the freed buffers glibc keeps for reuse (pachd/allocator.py: up to 64 MiB per heap): 150-310 MiB
# here, the top of it on a loaded machine; a line held whole would take more than NO_NEWLINE.
PEAK_RSS_LIMIT = 384 * MIB
RAW = b"Some\ncontent\nthat\nshouldnt\nbe\nline\ndelimited.\n"


def _no_newline(total: int, chunk: int = 2 * MIB) -> Iterator[bytes]:
    piece = bytes(range(256)).replace(b"\n", b"-") * (chunk // 256)
    for _ in range(total // chunk):
        yield piece


def test_a_long_line_stays_one_block_in_bounded_memory(own_pachd: PachdProcess) -> None:
    assert own_pachd.process is not None
    with Client(own_pachd.address) as client:
        client.create_repo("big")
        with client.commit("big") as c:
            client.put_file(("big", c.id), "line", _no_newline(NO_NEWLINE))
            client.put_file(("big", c.id), "line", b"\nend\n")
        peak = process_memory(own_pachd.process.pid, "VmHWM")
        assert peak < PEAK_RSS_LIMIT, f"pachd peaked at {peak / MIB:.0f} MiB putting {NO_NEWLINE / MIB:.0f} MiB"
        assert client.inspect_file(("big", "master/0"), "line").size_bytes == NO_NEWLINE + 5
        reader = client.get_file(("big", "master/0"), "line", offset=NO_NEWLINE - 3)
        assert reader.read() == b"\xfd\xfe\xff\nend\n"
        # The line is one block: a block shard holds all of it or none.
        sizes = set()
        for number in range(4):
            shard = pfs_pb2.Shard(block_number=number, block_modulus=4)
            try:
                sizes.add(client.inspect_file(("big", "master/0"), "line", shard=shard).size_bytes)
            except NotFoundError:
                sizes.add(0)
        assert sizes <= {0, 5, NO_NEWLINE, NO_NEWLINE + 5}
    assert list((own_pachd.data_dir / "objects" / "tmp").iterdir()) == []


def test_a_put_with_no_delimiter_is_one_block_as_in_v1_2_3(client: Client) -> None:
    client.create_repo("test")
    commit = client.start_commit("test")
    first = RAW * (9 * MIB // len(RAW) + 1)
    second = RAW * (18 * MIB // len(RAW) + 1)
    client.put_file(("test", commit.id), "foo", first, delimiter=pfs_pb2.NONE)
    client.put_file(("test", commit.id), "foo", second, delimiter=pfs_pb2.NONE)
    client.finish_commit(("test", commit.id))
    assert client.get_file_bytes(("test", commit.id), "foo") == first + second
    seen = []
    for number in range(10):
        shard = pfs_pb2.Shard(block_number=number, block_modulus=10)
        try:
            data = client.get_file_bytes(("test", commit.id), "foo", shard=shard)
        except NotFoundError:
            continue
        assert len(data) != len(first) + len(second), "both puts fell in one shard: nothing is tested"
        if data:
            assert len(data) in (len(first), len(second))
            seen.append(len(data))
    assert sorted(seen) == sorted([len(first), len(second)])


def _failing(total: int) -> Iterator[bytes]:
    yield from _no_newline(total)
    raise RuntimeError("the client gives up")


def test_a_failed_long_put_leaves_no_temporary_file(own_pachd: PachdProcess) -> None:
    tmp = own_pachd.data_dir / "objects" / "tmp"
    with Client(own_pachd.address) as client:
        client.create_repo("big")
        commit = client.start_commit("big")
        with pytest.raises(Exception):
            client.put_file(("big", commit.id), "line", _failing(64 * MIB))
        wait_until(lambda: list(tmp.iterdir()) == [], what="the temporary block file to go")
        assert client.list_file(("big", commit.id)) == []


def test_temporary_files_left_by_a_crash_are_swept_at_start(own_pachd: PachdProcess) -> None:
    leftover: Path = own_pachd.data_dir / "objects" / "tmp" / "0123abcd"
    leftover.write_bytes(b"half a block")
    own_pachd.kill()
    own_pachd.start()
    assert not leftover.exists()
