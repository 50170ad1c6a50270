"""Translation between PFS protobuf messages and domain values.

Reading a request validates it (pachd.validate), so the domain layer gets
only well-formed names, IDs and paths.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeVar

from google.protobuf import timestamp_pb2

from pachd import validate
from pachd.errors import InvalidArgument
from pachd.pfs.chunking import Delimiter
from pachd.pfs.commits import CommitStatus, CommitType
from pachd.pfs.files import DiffSpec, FileInfo, ListMode
from pachd.pfs.records import BlockRef, CommitRecord, FileKind, RepoRecord
from pachd.pfs.sharding import Shard
from pachyderm_client.proto import pfs_pb2

if TYPE_CHECKING:
    from google.protobuf.internal.containers import RepeatedCompositeFieldContainer

E = TypeVar("E", bound=enum.Enum)

# -- reading requests --------------------------------------------------------


def repo_name(repo: pfs_pb2.Repo) -> str:
    return validate.repo_name(repo.name)


def commit_ref(commit: pfs_pb2.Commit, *, allow_empty_id: bool = False) -> tuple[str, str]:
    """(repo, commit ID) of a Commit message."""
    repo = validate.repo_name(commit.repo.name)
    if commit.id or not allow_empty_id:
        validate.commit_id(commit.id)
    return repo, commit.id


def file_ref(file: pfs_pb2.File, *, allow_root: bool = True) -> tuple[str, str, str]:
    """(repo, commit ID, normalised path) of a File message."""
    repo, commit_id = commit_ref(file.commit)
    return repo, commit_id, validate.file_path(file.path, allow_root=allow_root)


def shard(message: pfs_pb2.Shard) -> Shard:
    if message.file_modulus and message.file_number >= message.file_modulus:
        raise InvalidArgument(f"shard file_number {message.file_number} must be below file_modulus {message.file_modulus}")
    if message.block_modulus and message.block_number >= message.block_modulus:
        raise InvalidArgument(
            f"shard block_number {message.block_number} must be below block_modulus {message.block_modulus}"
        )
    return Shard(message.file_number, message.file_modulus, message.block_number, message.block_modulus)


def diff_spec(message: pfs_pb2.DiffMethod, repo: str) -> DiffSpec | None:
    if not message.HasField("from_commit") or not message.from_commit.id:
        return None
    from_repo, from_id = commit_ref(message.from_commit)
    if from_repo != repo:
        raise InvalidArgument(f"a diff must be from a commit of the same repo ({repo!r}), not of {from_repo!r}")
    return DiffSpec(from_id, message.full_file)


def delimiter(value: int) -> Delimiter:
    return _enum(Delimiter, value, "delimiter", "NONE, JSON or LINE")


def commit_type(value: int) -> CommitType:
    return _enum(CommitType, value, "commit_type",
                 "COMMIT_TYPE_NONE (any), COMMIT_TYPE_READ (finished) or COMMIT_TYPE_WRITE (open)")


def commit_status(value: int) -> CommitStatus:
    return _enum(CommitStatus, value, "commit status", "NORMAL, ARCHIVED, CANCELLED or ALL")


def list_mode(value: int) -> ListMode:
    return _enum(ListMode, value, "list-file mode", "ListFile_NORMAL, ListFile_FAST or ListFile_RECURSE")


def _enum(kind: type[E], value: int, what: str, choices: str) -> E:
    """`value` of a request's enum field as `kind`; out of range, an error naming the wire's choices."""
    try:
        return kind(value)
    except ValueError as err:
        raise InvalidArgument(f"unknown {what} {value}; use {choices}") from err


# -- building replies ----------------------------------------------------------


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def commit(repo: str, commit_id: str) -> pfs_pb2.Commit:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id)


def repo_info(record: RepoRecord) -> pfs_pb2.RepoInfo:
    return pfs_pb2.RepoInfo(
        repo=pfs_pb2.Repo(name=record.name),
        created=timestamp(record.created),
        size_bytes=record.size_bytes,
        provenance=[pfs_pb2.Repo(name=name) for name in record.full_provenance],
    )


def commit_info(record: CommitRecord) -> pfs_pb2.CommitInfo:
    parent = record.parent
    return pfs_pb2.CommitInfo(
        commit=commit(record.repo, record.id),
        branch=record.branch,
        commit_type=pfs_pb2.COMMIT_TYPE_WRITE if record.is_open else pfs_pb2.COMMIT_TYPE_READ,
        parent_commit=commit(record.repo, f"{parent[0]}/{parent[1]}") if parent else None,
        started=timestamp(record.started),
        finished=timestamp(record.finished),
        size_bytes=record.size_bytes,
        cancelled=record.cancelled,
        archived=record.archived,
        provenance=[commit(r, f"{b}/{n}") for r, b, n in record.provenance],
    )


def file_info(repo: str, commit_id: str, info: FileInfo) -> pfs_pb2.FileInfo:
    return pfs_pb2.FileInfo(
        file=pfs_pb2.File(commit=commit(repo, commit_id), path=info.path),
        file_type=pfs_pb2.FILE_TYPE_DIR if info.kind is FileKind.DIR else pfs_pb2.FILE_TYPE_REGULAR,
        size_bytes=info.size,
        modified=timestamp(info.modified),
        commit_modified=commit(repo, info.commit_modified) if info.commit_modified else None,
        children=[pfs_pb2.File(commit=commit(repo, commit_id), path=p) for p in info.children],
    )


def block_refs(refs: Iterable[BlockRef]) -> pfs_pb2.BlockRefs:
    message = pfs_pb2.BlockRefs()
    add_block_refs(message.block_ref, refs)
    return message


def add_block_refs(into: RepeatedCompositeFieldContainer[pfs_pb2.BlockRef], refs: Iterable[BlockRef]) -> None:
    """Appends the refs to a repeated BlockRef field, each built in place, field by field (no message
    made and copied in: ListFileRefs runs this once per file of a pod's shard)."""
    for ref in refs:
        added = into.add()
        added.block.hash = ref.hash
        span = added.range
        span.lower = ref.lower
        span.upper = ref.upper
