"""FileInfos encoded by hand: a listing of 100,000 files is one message, and
building its 600,000 nested protobuf objects one by one cost most of a
ListFile. Each entry is written as protobuf wire bytes (the shared commit
encoded once), and the whole reply parsed in one call to the C runtime. The
bytes are exactly what messages.file_info would serialize to (a test holds it).
"""

from __future__ import annotations

from collections.abc import Sequence

from pachd.pfs.files import FileInfo
from pachd.pfs.records import FileKind
from pachyderm_client.proto import pfs_pb2

_LEN = 2  # wire type of length-delimited fields
_VARINT = 0


def _key(number: int, wire_type: int) -> bytes:
    return bytes((number << 3 | wire_type,))


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _key(number, _LEN) + _varint(len(data)) + data


_SMALL = [bytes((n,)) for n in range(0x80)]
_FILE_INFO = _key(1, _LEN)  # FileInfos.file_info
_FILE = _key(1, _LEN)  # FileInfo.file
_FILE_COMMIT, _FILE_PATH = _key(1, _LEN), _key(2, _LEN)
_TYPE_FILE = _key(2, _VARINT) + _varint(pfs_pb2.FILE_TYPE_REGULAR)
_TYPE_DIR = _key(2, _VARINT) + _varint(pfs_pb2.FILE_TYPE_DIR)
_SIZE, _MODIFIED = _key(3, _VARINT), _key(4, _LEN)
_SECONDS, _NANOS = _key(1, _VARINT), _key(2, _VARINT)


def _commit(repo: str, commit_id: str) -> bytes:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id).SerializeToString()


def file_infos(repo: str, commit_id: str, infos: Sequence[FileInfo]) -> pfs_pb2.FileInfos:
    """The FileInfos reply of a listing, as messages.file_info would build each entry."""
    commit = _commit(repo, commit_id)
    in_file = _FILE_COMMIT + _varint(len(commit)) + commit + _FILE_PATH
    modified_by: dict[str, bytes] = {}
    varint, small = _varint, _SMALL
    parts = []
    for info in infos:
        path = info.path.encode()
        size = len(path)
        file = in_file + (small[size] if size < 0x80 else varint(size)) + path
        size = len(file)
        body = _FILE + (small[size] if size < 0x80 else varint(size)) + file + \
            (_TYPE_DIR if info.kind is FileKind.DIR else _TYPE_FILE)
        if info.size:
            body += _SIZE + varint(info.size)
        seconds, nanos = divmod(int(info.modified * 1e9), 1_000_000_000)
        stamp = (_SECONDS + varint(seconds) if seconds else b"") + (_NANOS + varint(nanos) if nanos else b"")
        body += _MODIFIED + small[len(stamp)] + stamp
        if info.commit_modified:
            done = modified_by.get(info.commit_modified)
            if done is None:
                done = modified_by[info.commit_modified] = _field(5, _commit(repo, info.commit_modified))
            body += done
        for child in info.children:
            child_path = child.encode()
            body += _field(6, in_file + varint(len(child_path)) + child_path)
        size = len(body)
        parts.append(_FILE_INFO + (small[size] if size < 0x80 else varint(size)) + body)
    return pfs_pb2.FileInfos.FromString(b"".join(parts))
