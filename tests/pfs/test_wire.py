"""The hand-encoded FileInfos reply is byte for byte what building each message gives; the
hand-decoded PutFileRequest is what protobuf parses, its value not copied."""

from __future__ import annotations

import os
import random

import pytest
from google.protobuf.message import DecodeError

from pachd.pfs import messages, wire
from pachd.pfs.files import FileInfo
from pachd.pfs.records import FileKind
from pachyderm_client import encoding
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


_varint = encoding.varint  # the encoder of the FileInfos above (pachd/pfs/wire.py), held by the test above


def _length_field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _random_request(rng: random.Random) -> bytes:
    """PutFileRequest wire bytes with fields in any order, some repeated, some unknown, values of
    lengths on each side of the varint boundaries."""
    sizes = [0, 1, 2, 127, 128, 129, 16383, 16384, 16385, rng.randint(0, 70_000)]
    fields = []
    for _ in range(rng.randint(0, 6)):
        kind = rng.choice(["value", "value", "file", "type", "delimiter", "url", "unknown_len", "unknown_varint",
                           "fixed32", "fixed64"])
        if kind == "value":
            fields.append(_length_field(3, rng.randbytes(rng.choice(sizes))))
        elif kind == "file":
            file = pfs_pb2.File(commit=pfs_pb2.Commit(repo=pfs_pb2.Repo(name=rng.choice(["r", "data"])),
                                                      id=rng.choice(["master", "master/0", ""])),
                                path=rng.choice(["a", "/b/c", "ünï"]))
            fields.append(_length_field(1, file.SerializeToString()))
        elif kind in ("type", "delimiter"):
            fields.append(_varint((2 if kind == "type" else 4) << 3) + _varint(rng.choice([0, 1, 2, 300])))
        elif kind == "url":
            fields.append(_length_field(5, rng.choice(["", "http://x/y", "ü"]).encode()))
        elif kind == "unknown_len":
            fields.append(_length_field(rng.choice([6, 15, 16, 2047, 2048]), rng.randbytes(rng.choice(sizes[:5]))))
        elif kind == "unknown_varint":
            fields.append(_varint(rng.choice([7, 100]) << 3) + _varint(rng.randint(0, 2**64 - 1)))
        else:
            wide = kind == "fixed64"
            fields.append(_varint(9 << 3 | (1 if wide else 5)) + rng.randbytes(8 if wide else 4))
    return b"".join(fields)


def _check_decoded_as_protobuf(data: bytes) -> None:
    try:
        parsed = pfs_pb2.PutFileRequest.FromString(data)
    except DecodeError:
        with pytest.raises(DecodeError):
            wire.put_file_request(data)
        return
    decoded = wire.put_file_request(data)
    value = bytes(decoded.value.view()) if decoded.value is not None else b""
    assert value == parsed.value
    parsed.ClearField("value")
    assert (decoded.header or pfs_pb2.PutFileRequest()) == parsed
    assert (decoded.header or pfs_pb2.PutFileRequest()).SerializeToString() == parsed.SerializeToString()


def test_put_file_requests_decode_as_protobuf_parses_them() -> None:
    seed = random.randrange(2**32)
    print("seed", seed)
    rng = random.Random(seed)
    for _ in range(3000):
        _check_decoded_as_protobuf(_random_request(rng))


def test_broken_put_file_requests_fail_as_protobuf_fails_them() -> None:
    rng = random.Random(11)
    requests = [_random_request(rng) for _ in range(40)]
    groups = [b"\x0b\x08\x01\x0c", b"\x1b\x1c", _varint(3 << 3) + b"\x05"]  # groups; a value as a varint
    for data in requests + groups:
        for cut in {0, 1, 2, 3, len(data) // 2, len(data) - 1, *(rng.randint(0, len(data)) for _ in range(5))}:
            if 0 <= cut <= len(data):
                _check_decoded_as_protobuf(data[:cut])
                _check_decoded_as_protobuf(data[:cut] + b"\xff")
    for data in (b"\x80" * 11, _varint(3 << 3 | 2) + _varint(2**40) + b"x", b"\x00\x01"):
        _check_decoded_as_protobuf(data)


def test_a_put_file_value_is_a_slice_of_the_received_bytes() -> None:
    value = os.urandom(1 << 20)
    for request in (pfs_pb2.PutFileRequest(value=value),
                    pfs_pb2.PutFileRequest(file=pfs_pb2.File(path="x"), value=value, delimiter=pfs_pb2.LINE)):
        data = request.SerializeToString()
        decoded = wire.put_file_request(data)
        assert decoded.value is not None and decoded.value.buffer is data  # not copied
        assert decoded.value.view() == value
