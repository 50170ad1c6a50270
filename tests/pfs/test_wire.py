"""The hand-encoded FileInfos reply is byte for byte what building each message gives."""

from __future__ import annotations

import random

from pachd.pfs import messages, wire
from pachd.pfs.files import FileInfo
from pachd.pfs.records import FileKind
from pachyderm_client.proto import pfs_pb2


def test_hand_encoded_listings_match_the_messages() -> None:
    rng = random.Random(7)
    infos = [FileInfo("/", FileKind.DIR, 0, 0.0, ""), FileInfo("/ünï/cødé", FileKind.FILE, 1, 1.5, "master/0")]
    for i in range(500):
        name = "/" + "".join(rng.choice("abc/üé") for _ in range(rng.randint(1, 300))).strip("/")
        infos.append(FileInfo(
            name or "/x", rng.choice([FileKind.FILE, FileKind.DIR]), rng.choice([0, 1, 127, 128, 2**40 + i]),
            rng.choice([0.0, 0.5, 1.0, 1_700_000_000.123456, rng.uniform(0, 2e9)]),
            rng.choice(["", "master/0", f"b{i % 3}/{i}"]),
            tuple(f"/c{j}" for j in range(rng.choice([0, 0, 3]))),
        ))
    built = pfs_pb2.FileInfos(file_info=[messages.file_info("repo", "master/12", i) for i in infos])
    encoded = wire.file_infos_wire("repo", "master/12", infos)
    assert encoded == built.SerializeToString()
    assert pfs_pb2.FileInfos.FromString(encoded) == built


def test_runs_of_entries_that_share_all_but_their_paths_match_the_messages() -> None:
    """Entries alike but for their paths (of several lengths, one past 127 bytes) come in
    runs, broken by a directory listed with its children and by entries that differ."""
    infos = [FileInfo(f"/d/{'x' * n}", FileKind.FILE, 2, 1_700_000_000.25, "master/0") for n in (1, 2, 1, 200, 2)]
    infos.append(FileInfo("/d/sub", FileKind.DIR, 4, 1_700_000_000.25, "master/0", ("/d/sub/a", "/d/sub/b")))
    infos += [FileInfo(f"/d/{'y' * n}", FileKind.FILE, 2, 1_700_000_000.25, "master/0") for n in (1, 3)]
    infos += [FileInfo("/d/z", FileKind.DIR, 2, 1_700_000_000.25, "master/0"),
              FileInfo("/d/zz", FileKind.FILE, 0, 1_700_000_000.25, "master/0"),
              FileInfo("/d/zzz", FileKind.FILE, 0, 0.0, "master/0"), FileInfo("/d/zzzz", FileKind.FILE, 0, 0.0, ""),
              FileInfo("/d/q", FileKind.FILE, 0, 0.0, "")]
    built = pfs_pb2.FileInfos(file_info=[messages.file_info("repo", "master/12", i) for i in infos])
    assert wire.file_infos_wire("repo", "master/12", infos) == built.SerializeToString()
