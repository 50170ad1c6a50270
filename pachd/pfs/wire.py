"""Messages coded by hand where the protobuf runtime costs too much.

FileInfos, encoded: a listing of 100,000 files is one message, and building
its 600,000 nested protobuf objects one by one cost most of a ListFile. Each
entry is written as protobuf wire bytes (the shared commit encoded once), and
the whole reply parsed in one call to the C runtime. The bytes are exactly
what messages.file_info would serialize to (a test holds it).

BytesValue, encoded: each GetFile (and GetBlock) reply is a piece of a block, and
building a message around it and serializing that copied the piece twice more;
bytes_value() writes the field's tag and length before it, one copy.

PutFileRequest, decoded: a put-file stream is mostly `value` bytes, and
parsing a request copies them into the message, and reading the field copies
them again. put_file_request() takes the value as a Slice of the received
bytes and lets protobuf parse only the rest (a file's header, a few bytes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pachd.pfs.chunking import Slice
from pachd.pfs.files import FileInfo
from pachd.pfs.records import FileKind
from pachyderm_client.encoding import LEN, SMALL, VARINT, field, key, varint
from pachyderm_client.proto import pfs_pb2

_FILE_INFO = key(1, LEN)  # FileInfos.file_info
_FILE = key(1, LEN)  # FileInfo.file
_FILE_COMMIT, _FILE_PATH = key(1, LEN), key(2, LEN)
_TYPE_FILE = key(2, VARINT) + varint(pfs_pb2.FILE_TYPE_REGULAR)
_TYPE_DIR = key(2, VARINT) + varint(pfs_pb2.FILE_TYPE_DIR)
_SIZE, _MODIFIED = key(3, VARINT), key(4, LEN)
_SECONDS, _NANOS = key(1, VARINT), key(2, VARINT)


def _commit(repo: str, commit_id: str) -> bytes:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id).SerializeToString()


def file_infos_wire(repo: str, commit_id: str, infos: Sequence[FileInfo]) -> bytes:
    """The FileInfos reply of a listing as wire bytes, as messages.file_info would build each entry
    (ListFile sends them as they are: see pachd/interceptors.py, WireCodecs).

    An entry is three pieces: what comes before its path (the entry's and the File's
    tags and lengths, and the commit, all fixed by the path's length and the rest's),
    the path, and the rest (type, size, times, commit modified). A listing's entries
    mostly share the rest with the entry before them (one put stamps all its files
    alike, in one commit), so it is encoded once for a run of them, and what comes
    before a path once for each length of path in that run."""
    commit = _commit(repo, commit_id)
    in_file = _FILE_COMMIT + varint(len(commit)) + commit + _FILE_PATH
    modified_by: dict[str, bytes] = {}
    stamps: dict[float, bytes] = {}
    parts: list[bytes] = []
    add = parts.extend
    last: tuple[FileKind, int, float, str] | None = None
    tail = b""
    heads: dict[int, bytes] = {}  # path length -> what comes before such a path, for this tail
    for path_text, kind, size, modified, commit_modified, children in infos:
        path = path_text.encode()
        if children:  # a directory listed with its children: a rest of its own
            rest = _tail(repo, kind, size, modified, commit_modified, stamps, modified_by) + _children(in_file, children)
            add((_head(in_file, len(path), len(rest)), path, rest))
            continue
        if last is None or last[1] != size or last[2] != modified or last[3] != commit_modified or last[0] is not kind:
            last = (kind, size, modified, commit_modified)
            tail = _tail(repo, kind, size, modified, commit_modified, stamps, modified_by)
            heads = {}
        head = heads.get(len(path))
        if head is None:
            head = heads[len(path)] = _head(in_file, len(path), len(tail))
        add((head, path, tail))
    return b"".join(parts)


def _head(in_file: bytes, path_size: int, rest_size: int) -> bytes:
    """An entry's bytes before its path, for a path and a rest of these lengths."""
    path_head = varint(path_size)
    file_size = len(in_file) + len(path_head) + path_size
    file_head = varint(file_size)
    return _FILE_INFO + varint(1 + len(file_head) + file_size + rest_size) + _FILE + file_head + in_file + path_head


def _tail(repo: str, kind: FileKind, size: int, modified: float, commit_modified: str,
          stamps: dict[float, bytes], modified_by: dict[str, bytes]) -> bytes:
    """An entry's fields after its File: type, size, modification time, commit modified."""
    stamp = stamps.get(modified)
    if stamp is None:
        stamp = stamps[modified] = _stamp(modified)
    done = b""
    if commit_modified:
        done = modified_by.get(commit_modified, b"")
        if not done:
            done = modified_by[commit_modified] = field(5, _commit(repo, commit_modified))
    return (_TYPE_DIR if kind is FileKind.DIR else _TYPE_FILE) + (_SIZE + varint(size) if size else b"") + stamp + done


def _children(in_file: bytes, children: tuple[str, ...]) -> bytes:
    return b"".join(field(6, in_file + varint(len(c)) + c) for c in map(str.encode, children))


def _stamp(modified: float) -> bytes:
    """The `modified` field: a Timestamp of the time, as messages.timestamp makes it."""
    seconds, nanos = divmod(int(modified * 1e9), 1_000_000_000)
    stamp = (_SECONDS + varint(seconds) if seconds else b"") + (_NANOS + varint(nanos) if nanos else b"")
    return _MODIFIED + SMALL[len(stamp)] + stamp


_BYTES_VALUE = key(1, LEN)  # BytesValue.value


def bytes_value(data: bytes) -> bytes:
    """The wire bytes of BytesValue(value=data), as its SerializeToString() gives them."""
    return _BYTES_VALUE + varint(len(data)) + data if data else b""


_VALUE = 3  # PutFileRequest.value
_FIXED64, _FIXED32 = 1, 5


@dataclass(frozen=True, slots=True)
class PutFileMessage:
    """A PutFileRequest as put_file_request() decodes it."""

    header: pfs_pb2.PutFileRequest | None  # every field but `value` (None: the request had no other)
    value: Slice | None  # None: empty


class _Unusual(Exception):
    """The request is not in the simple form: protobuf decodes it (and says what is wrong)."""


def put_file_request(data: bytes) -> PutFileMessage:
    """The request in `data`, as protobuf would parse it, its value not copied out.

    The top-level fields are walked: the value's range is taken (the last one
    wins, as in protobuf), every other field's bytes are handed to protobuf,
    which parses them as it would have in place. A request that is not simply
    fields of known wire types (truncated, groups, a value that is not
    length-delimited) is parsed by protobuf whole, so it fails as it always did."""
    value = (0, 0)
    others: list[tuple[int, int]] = []
    size = len(data)
    position = 0
    try:
        while position < size:
            start = position
            tag, position = _read_varint(data, position)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == LEN:
                length, position = _read_varint(data, position)
                end = position + length
                if end > size:
                    raise _Unusual
                if number == _VALUE:
                    value, position = (position, end), end
                    continue
                position = end
            elif number == _VALUE:
                raise _Unusual
            elif wire_type == VARINT:
                _, position = _read_varint(data, position)
            elif wire_type in (_FIXED64, _FIXED32):
                position += 8 if wire_type == _FIXED64 else 4
                if position > size:
                    raise _Unusual
            else:
                raise _Unusual
            if others and others[-1][1] == start:
                others[-1] = (others[-1][0], position)
            else:
                others.append((start, position))
    except _Unusual:
        return _parsed_whole(data)
    header = pfs_pb2.PutFileRequest.FromString(b"".join(data[a:b] for a, b in others)) if others else None
    return PutFileMessage(header, Slice(data, *value) if value[1] > value[0] else None)


def _parsed_whole(data: bytes) -> PutFileMessage:
    request = pfs_pb2.PutFileRequest.FromString(data)  # raises DecodeError where data is no request
    value = request.value
    request.ClearField("value")
    return PutFileMessage(request, Slice(value, 0, len(value)) if value else None)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The varint at `position` and where it ends."""
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise _Unusual
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
