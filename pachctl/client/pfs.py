"""PfsClient: repos, commits and files (pfs.API), as pachctl's verbs."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import BinaryIO

from typing_extensions import Buffer

from google.protobuf import empty_pb2

from pachctl.client._base import CHUNK, Connection, resumable, stream, translated
from protos import pfs_pb2, pfs_pb2_grpc

Data = bytes | BinaryIO | Iterable[bytes]
"""What put-file accepts: bytes, a binary file object, or chunks."""
Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""

LINE = pfs_pb2.LINE
JSON = pfs_pb2.JSON
NONE = pfs_pb2.NONE


def commit(repo: str, commit_id: str) -> pfs_pb2.Commit:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id)


def parse_commit(text: str) -> tuple[str, str]:
    """"repo/commit-id" -> (repo, commit-id). IDs contain a slash (master/0), so
    the split is at the first one; "repo" alone gives an empty ID."""
    repo, _, commit_id = text.partition("/")
    return repo, commit_id


def _shard(shard: pfs_pb2.Shard | None) -> pfs_pb2.Shard | None:
    return shard


def _diff(repo: str, from_commit: str, full_file: bool) -> pfs_pb2.DiffMethod | None:
    return pfs_pb2.DiffMethod(from_commit=commit(repo, from_commit), full_file=full_file) if from_commit else None


def _chunks(data: Data, progress: Progress | None = None) -> Iterator[bytes]:
    """The data in chunks of CHUNK bytes, never all of it in memory at once."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        source: Iterable[bytes] = (bytes(view[i : i + CHUNK]) for i in range(0, len(view), CHUNK))
    elif hasattr(data, "read"):
        reader = data
        source = iter(lambda: reader.read(CHUNK), b"")
    else:
        source = data
    for chunk in source:
        if chunk:
            if progress is not None:
                progress(len(chunk))
            yield chunk


class FileReader(io.RawIOBase):
    """A file-like view of a GetFile stream; iterate it for chunks as they come."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        while not self._pending:
            try:
                self._pending = next(self._chunks)
            except StopIteration:
                return 0
        view = memoryview(buffer).cast("B")
        size = min(len(view), len(self._pending))
        view[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def __iter__(self) -> Iterator[bytes]:  # chunks as they come, not lines
        if self._pending:
            yield self._pending
            self._pending = b""
        yield from self._chunks


class PfsClient(Connection):
    def __init__(self, address: str, **kwargs: object) -> None:
        super().__init__(address, **kwargs)  # type: ignore[arg-type]
        self._pfs = pfs_pb2_grpc.APIStub(self._channel)
        self._blocks = pfs_pb2_grpc.BlockAPIStub(self._channel)

    # -- repos ------------------------------------------------------------------

    @translated
    def create_repo(self, name: str, provenance: Sequence[str] = ()) -> None:
        self._pfs.CreateRepo(pfs_pb2.CreateRepoRequest(
            repo=pfs_pb2.Repo(name=name), provenance=[pfs_pb2.Repo(name=p) for p in provenance]))

    @translated
    def inspect_repo(self, name: str) -> pfs_pb2.RepoInfo:
        return self._pfs.InspectRepo(pfs_pb2.InspectRepoRequest(repo=pfs_pb2.Repo(name=name)))

    @translated
    def list_repo(self, provenance: Sequence[str] = ()) -> list[pfs_pb2.RepoInfo]:
        request = pfs_pb2.ListRepoRequest(provenance=[pfs_pb2.Repo(name=p) for p in provenance])
        return list(self._pfs.ListRepo(request).repo_info)

    @translated
    def delete_repo(self, name: str, force: bool = False) -> None:
        self._pfs.DeleteRepo(pfs_pb2.DeleteRepoRequest(repo=pfs_pb2.Repo(name=name), force=force))

    # -- commits ----------------------------------------------------------------

    @translated
    def start_commit(self, repo: str, parent: str = "master", provenance: Sequence[tuple[str, str]] = ()) -> pfs_pb2.Commit:
        """A new open commit after `parent` (a branch name means its head)."""
        return self._pfs.StartCommit(pfs_pb2.StartCommitRequest(
            parent=commit(repo, parent), provenance=[commit(r, c) for r, c in provenance]))

    @translated
    def fork_commit(self, repo: str, parent: str, branch: str,
                    provenance: Sequence[tuple[str, str]] = ()) -> pfs_pb2.Commit:
        return self._pfs.ForkCommit(pfs_pb2.ForkCommitRequest(
            parent=commit(repo, parent), branch=branch, provenance=[commit(r, c) for r, c in provenance]))

    @translated
    def finish_commit(self, repo: str, commit_id: str, cancel: bool = False) -> None:
        self._pfs.FinishCommit(pfs_pb2.FinishCommitRequest(commit=commit(repo, commit_id), cancel=cancel))

    def cancel_commit(self, repo: str, commit_id: str) -> None:
        self.finish_commit(repo, commit_id, cancel=True)

    @contextlib.contextmanager
    def commit(self, repo: str, parent: str = "master") -> Iterator[pfs_pb2.Commit]:
        """Starts a commit, finishes it after the block, or cancels it if the block raises."""
        started = self.start_commit(repo, parent)
        try:
            yield started
        except BaseException:
            self.finish_commit(repo, started.id, cancel=True)
            raise
        self.finish_commit(repo, started.id)

    @translated
    def archive_commit(self, commits: Sequence[tuple[str, str]]) -> None:
        self._pfs.ArchiveCommit(pfs_pb2.ArchiveCommitRequest(commits=[commit(r, c) for r, c in commits]))

    @translated
    def inspect_commit(self, repo: str, commit_id: str) -> pfs_pb2.CommitInfo:
        return self._pfs.InspectCommit(pfs_pb2.InspectCommitRequest(commit=commit(repo, commit_id)))

    @resumable
    def list_commit(
        self, from_commits: Sequence[tuple[str, str]] = (), provenance: Sequence[tuple[str, str]] = (),
        commit_type: int = pfs_pb2.COMMIT_TYPE_NONE, status: int = pfs_pb2.NORMAL, block: bool = False,
    ) -> list[pfs_pb2.CommitInfo]:
        """Commits of the given repos ((repo, "") for all of a repo, (repo, id) for its descendants)."""
        request = pfs_pb2.ListCommitRequest(
            from_commits=[commit(r, c) for r, c in from_commits], provenance=[commit(r, c) for r, c in provenance],
            commit_type=commit_type, status=status, block=block,  # type: ignore[arg-type]
        )
        return list(self._pfs.ListCommit(request).commit_info)

    @translated
    def list_branch(self, repo: str, status: int = pfs_pb2.NORMAL) -> list[str]:
        request = pfs_pb2.ListBranchRequest(repo=pfs_pb2.Repo(name=repo), status=status)  # type: ignore[arg-type]
        return list(self._pfs.ListBranch(request).branches)

    @translated
    def delete_commit(self, repo: str, commit_id: str) -> None:
        self._pfs.DeleteCommit(pfs_pb2.DeleteCommitRequest(commit=commit(repo, commit_id)))

    @resumable
    def flush_commit(self, commits: Sequence[tuple[str, str]], to_repos: Sequence[str] = (),
                     timeout: float | None = None) -> list[pfs_pb2.CommitInfo]:
        """Waits for every downstream commit of `commits` to finish; returns them (and `commits`)."""
        request = pfs_pb2.FlushCommitRequest(commit=[commit(r, c) for r, c in commits],
                                             to_repo=[pfs_pb2.Repo(name=r) for r in to_repos])
        return list(self._pfs.FlushCommit(request, timeout=timeout).commit_info)

    @translated
    def squash_commit(self, repo: str, from_commits: Sequence[str], to_commit: str) -> None:
        self._pfs.SquashCommit(pfs_pb2.SquashCommitRequest(
            from_commits=[commit(repo, c) for c in from_commits], to_commit=commit(repo, to_commit)))

    @translated
    def replay_commit(self, repo: str, from_commits: Sequence[str], to_branch: str) -> list[pfs_pb2.Commit]:
        return list(self._pfs.ReplayCommit(pfs_pb2.ReplayCommitRequest(
            from_commits=[commit(repo, c) for c in from_commits], to_branch=to_branch)).commit)

    # -- files ------------------------------------------------------------------

    @translated
    def put_file(self, repo: str, commit_id: str, path: str, data: Data, delimiter: int = LINE,
                 progress: Progress | None = None) -> None:
        """Appends `data` to the file, streamed in CHUNK-byte messages."""
        self.put_files(repo, commit_id, [(path, data)], delimiter, progress)

    @translated
    def put_files(self, repo: str, commit_id: str, files: Iterable[tuple[str, Data]], delimiter: int = LINE,
                  progress: Progress | None = None) -> None:
        """Appends to many files in ONE PutFile stream: each file starts with a
        message naming it (pachd reads a named file as the start of the next)."""

        def requests() -> Iterator[pfs_pb2.PutFileRequest]:
            target = commit(repo, commit_id)
            for path, data in files:
                first = True
                for chunk in _chunks(data, progress):
                    if first:
                        yield pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=target, path=path), value=chunk,
                                                     delimiter=delimiter, file_type=pfs_pb2.FILE_TYPE_REGULAR)  # type: ignore[arg-type]
                        first = False
                    else:
                        yield pfs_pb2.PutFileRequest(value=chunk)
                if first:  # an empty file still needs its header
                    yield pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=target, path=path),
                                                 delimiter=delimiter, file_type=pfs_pb2.FILE_TYPE_REGULAR)  # type: ignore[arg-type]

        self._pfs.PutFile(requests(), metadata=self.metadata or None)

    @translated
    def put_file_url(self, repo: str, commit_id: str, path: str, url: str, delimiter: int = NONE) -> None:
        """pachd fetches `url` itself and appends it to the file."""
        request = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit(repo, commit_id), path=path), url=url,
                                         delimiter=delimiter, file_type=pfs_pb2.FILE_TYPE_REGULAR)  # type: ignore[arg-type]
        self._pfs.PutFile(iter([request]))

    @translated
    def make_directory(self, repo: str, commit_id: str, path: str) -> None:
        request = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit(repo, commit_id), path=path),
                                         file_type=pfs_pb2.FILE_TYPE_DIR)
        self._pfs.PutFile(iter([request]))

    def get_file(self, repo: str, commit_id: str, path: str, offset: int = 0, size: int = 0, from_commit: str = "",
                 full_file: bool = False, shard: pfs_pb2.Shard | None = None) -> FileReader:
        """A file-like reader over the file's bytes (narrowed by shard and diff)."""
        request = pfs_pb2.GetFileRequest(
            file=pfs_pb2.File(commit=commit(repo, commit_id), path=path), offset_bytes=offset, size_bytes=size,
            shard=_shard(shard), diff_method=_diff(repo, from_commit, full_file),
        )
        responses = self._pfs.GetFile(request)
        return FileReader(value.value for value in stream(responses))

    def get_file_bytes(self, repo: str, commit_id: str, path: str, **kwargs: object) -> bytes:
        return b"".join(self.get_file(repo, commit_id, path, **kwargs))  # type: ignore[arg-type]

    @translated
    def inspect_file(self, repo: str, commit_id: str, path: str, from_commit: str = "", full_file: bool = False,
                     shard: pfs_pb2.Shard | None = None) -> pfs_pb2.FileInfo:
        return self._pfs.InspectFile(pfs_pb2.InspectFileRequest(
            file=pfs_pb2.File(commit=commit(repo, commit_id), path=path), shard=_shard(shard),
            diff_method=_diff(repo, from_commit, full_file)))

    @translated
    def list_file(self, repo: str, commit_id: str, path: str = "/", from_commit: str = "", full_file: bool = False,
                  shard: pfs_pb2.Shard | None = None, mode: int = pfs_pb2.ListFile_NORMAL) -> list[pfs_pb2.FileInfo]:
        return list(self._pfs.ListFile(pfs_pb2.ListFileRequest(
            file=pfs_pb2.File(commit=commit(repo, commit_id), path=path), shard=_shard(shard),
            diff_method=_diff(repo, from_commit, full_file), mode=mode)).file_info)  # type: ignore[arg-type]

    def walk_files(self, repo: str, commit_id: str, path: str = "/", from_commit: str = "", full_file: bool = False,
                   shard: pfs_pb2.Shard | None = None) -> Iterator[pfs_pb2.FileInfo]:
        """Every file (not directory) below `path`, one ListFile per directory."""
        for info in self.list_file(repo, commit_id, path, from_commit, full_file, shard):
            if info.file_type == pfs_pb2.FILE_TYPE_DIR:
                yield from self.walk_files(repo, commit_id, info.file.path, from_commit, full_file, shard)
            else:
                yield info

    @translated
    def delete_file(self, repo: str, commit_id: str, path: str) -> None:
        self._pfs.DeleteFile(pfs_pb2.DeleteFileRequest(file=pfs_pb2.File(commit=commit(repo, commit_id), path=path)))

    @translated
    def delete_all(self) -> None:
        self._pfs.DeleteAll(empty_pb2.Empty())

    @translated
    def archive_all(self) -> None:
        self._pfs.ArchiveAll(empty_pb2.Empty())
