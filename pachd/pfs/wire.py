"""Messages coded by hand where the protobuf runtime costs too much.

FileInfos, encoded: a listing of 100,000 files is one message, and building
its 600,000 nested protobuf objects one by one cost most of a ListFile. Each
entry is written as protobuf wire bytes (the shared commit encoded once), and
the whole reply parsed in one call to the C runtime. The bytes are exactly
what messages.file_info would serialize to (a test holds it).

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
from pachyderm_client.proto import pfs_pb2

_SMALL = [bytes((n,)) for n in range(0x80)]

_LEN = 2  # wire type of length-delimited fields
_VARINT = 0


def _key(number: int, wire_type: int) -> bytes:
    return bytes((number << 3 | wire_type,))


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


_FILE_INFO = _key(1, _LEN)  # FileInfos.file_info
_FILE = _key(1, _LEN)  # FileInfo.file
_FILE_COMMIT, _FILE_PATH = _key(1, _LEN), _key(2, _LEN)
_TYPE_FILE = _key(2, _VARINT) + _varint(pfs_pb2.FILE_TYPE_REGULAR)
_TYPE_DIR = _key(2, _VARINT) + _varint(pfs_pb2.FILE_TYPE_DIR)
_SIZE, _MODIFIED = _key(3, _VARINT), _key(4, _LEN)
_SECONDS, _NANOS = _key(1, _VARINT), _key(2, _VARINT)


def _commit(repo: str, commit_id: str) -> bytes:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id).SerializeToString()


def file_infos_wire(repo: str, commit_id: str, infos: Sequence[FileInfo]) -> bytes:
    """The FileInfos reply of a listing as wire bytes, as messages.file_info would build each entry
    (ListFile sends them as they are: see pachd/interceptors.py, PreEncodedReplies).

    Each entry's pieces go into one list, joined once: the lengths of the nested
    messages are added up rather than measured on concatenated bytes. A listing's
    entries mostly share their modification times (one put stamps all its files
    alike) and their commits, so each distinct one is encoded once."""
    commit = _commit(repo, commit_id)
    in_file = _FILE_COMMIT + _varint(len(commit)) + commit + _FILE_PATH
    in_file_size = len(in_file)
    modified_by: dict[str, bytes] = {}
    stamps: dict[float, bytes] = {}
    varint = _varint
    parts: list[bytes] = []
    add = parts.extend
    for info in infos:
        path = info.path.encode()
        path_size = varint(len(path))
        file_size = in_file_size + len(path_size) + len(path)
        file_head = varint(file_size)
        kind = _TYPE_DIR if info.kind is FileKind.DIR else _TYPE_FILE
        size = _SIZE + varint(info.size) if info.size else b""
        stamp = stamps.get(info.modified)
        if stamp is None:
            stamp = stamps[info.modified] = _stamp(info.modified)
        done = b""
        if info.commit_modified:
            done = modified_by.get(info.commit_modified, b"")
            if not done:
                done = modified_by[info.commit_modified] = _field(5, _commit(repo, info.commit_modified))
        children = b"".join(_field(6, in_file + varint(len(c)) + c) for c in map(str.encode, info.children)) \
            if info.children else b""
        body_size = 1 + len(file_head) + file_size + len(kind) + len(size) + len(stamp) + len(done) + len(children)
        add((_FILE_INFO, varint(body_size), _FILE, file_head, in_file, path_size, path, kind, size, stamp, done,
             children))
    return b"".join(parts)


def _stamp(modified: float) -> bytes:
    """The `modified` field: a Timestamp of the time, as messages.timestamp makes it."""
    seconds, nanos = divmod(int(modified * 1e9), 1_000_000_000)
    stamp = (_SECONDS + _varint(seconds) if seconds else b"") + (_NANOS + _varint(nanos) if nanos else b"")
    return _MODIFIED + _SMALL[len(stamp)] + stamp


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
            key, position = _read_varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == _LEN:
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
            elif wire_type == _VARINT:
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
