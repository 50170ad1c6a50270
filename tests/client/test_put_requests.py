"""The client writes PutFile's requests by hand (the value after the other fields, copied once):
each must parse as the request protobuf would have built, and pachd's decoder must read it so."""

from __future__ import annotations

import io
import random

import pytest

from pachd.pfs import wire
from pachyderm_client import encoding
from pachyderm_client._base import CHUNK
from pachyderm_client.pfs import _put_file_requests
from pachyderm_client.proto import pfs_pb2

INTO = pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id="master/3")


def _expected(path: str, chunks: list[bytes]) -> list[pfs_pb2.PutFileRequest]:
    """What the client sent before: a file's first request names it, each carries one chunk."""
    chunks = chunks or [b""]
    first = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=INTO, path=path), delimiter=pfs_pb2.LINE,
                                   file_type=pfs_pb2.FILE_TYPE_REGULAR, value=chunks[0])
    return [first, *(pfs_pb2.PutFileRequest(value=chunk) for chunk in chunks[1:])]


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16384, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_each_request_is_the_message_protobuf_would_have_sent(size: int) -> None:
    data = random.Random(size).randbytes(size)
    given = [("/a", data), ("/b", io.BytesIO(data)), ("/c", memoryview(data)),
             ("/d", iter([data[: size // 3], b"", data[size // 3 :]]) if size else iter([]))]
    sent = list(_put_file_requests(INTO, given, pfs_pb2.LINE, None))
    in_chunks = [data[i : i + CHUNK] for i in range(0, size, CHUNK)]
    as_given = [part for part in (data[: size // 3], data[size // 3 :]) if part]  # the empty one left out
    expected = [*_expected("/a", in_chunks), *_expected("/b", in_chunks), *_expected("/c", in_chunks),
                *_expected("/d", as_given)]
    assert all(isinstance(request, bytes) for request in sent)
    assert [pfs_pb2.PutFileRequest.FromString(request) for request in sent] == expected
    for request, message in zip(sent, expected):  # pachd's own decoder: the value a slice, the rest parsed
        decoded = wire.put_file_request(request)
        assert (bytes(decoded.value.view()) if decoded.value else b"") == message.value
        header = pfs_pb2.PutFileRequest(value=message.value)
        header.CopyFrom(message)
        header.ClearField("value")
        assert decoded.header == (header if header.ByteSize() else None)


def test_the_varint_is_protobufs_own() -> None:
    assert encoding.varint(0) == b"\0"
    for value in [1, 127, 128, 255, 16383, 16384, 2**21 - 1, 2**21, 2**28 + 5, 2**35 + 3, 2**63 - 1]:
        encoded = pfs_pb2.GetFileRequest(offset_bytes=value).SerializeToString()
        assert encoded == encoding.key(2, encoding.VARINT) + encoding.varint(value)
