"""PfsClient: repos, commits and files (pfs.API), as pachctl's verbs.

Every method that takes a commit takes a CommitLike: "repo/id", (repo, id) or
a pfs_pb2.Commit (what start_commit and the commit() block return).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import io
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, BinaryIO

import grpc
from google.protobuf import empty_pb2

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

from pachyderm_client import config, encoding
from pachyderm_client._base import CHUNK, Connection, resumable, stream, translated
from pachyderm_client.errors import PachydermError
from pachyderm_client._lazy import lazy_module
from pachyderm_client.proto import pfs_pb2

if TYPE_CHECKING:
    from pachyderm_client import local, packing, reading
    from pachyderm_client.proto import pfs_admin_pb2, pfs_pb2_grpc
else:  # loaded by the first call that needs them (see _lazy.py): the job shim's start needs none
    local, packing = lazy_module("pachyderm_client.local"), lazy_module("pachyderm_client.packing")
    reading = lazy_module("pachyderm_client.reading")
    pfs_pb2_grpc = lazy_module("pachyderm_client.proto.pfs_pb2_grpc")
    pfs_admin_pb2 = lazy_module("pachyderm_client.proto.pfs_admin_pb2")

Data = bytes | BinaryIO | Iterable[bytes]
"""What put-file accepts: bytes, a binary file object, or chunks."""
Progress = Callable[[int], None]
"""Called with the number of bytes just sent or received."""

LINE = pfs_pb2.LINE
JSON = pfs_pb2.JSON
NONE = pfs_pb2.NONE


CommitLike = str | tuple[str, str] | pfs_pb2.Commit
"""A commit: "repo/id" (split at the first slash, so "data/master/0" is master/0 of
data; "repo" alone is the repo with no ID), a (repo, id) tuple, or a Commit message."""


def commit(repo: str, commit_id: str) -> pfs_pb2.Commit:
    """The Commit message for (repo, commit_id)."""
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id)


def as_commit(value: CommitLike) -> pfs_pb2.Commit:
    """The Commit message a CommitLike names; TypeError for anything else."""
    if isinstance(value, pfs_pb2.Commit):
        return value
    if isinstance(value, str):
        return commit(*parse_commit(value))
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(part, str) for part in value):
        return commit(value[0], value[1])
    raise TypeError(f'a commit is "repo/id", (repo, id) or a pfs_pb2.Commit, not {value!r}')


def as_commits(values: CommitLike | Iterable[CommitLike]) -> list[pfs_pb2.Commit]:
    """Commit messages for several commits; one commit alone ("repo/id", (repo, id) or a Commit) counts as one."""
    if isinstance(values, (str, pfs_pb2.Commit)) or (
            isinstance(values, tuple) and len(values) == 2 and all(isinstance(part, str) for part in values)):
        return [as_commit(values)]  # type: ignore[arg-type]
    return [as_commit(value) for value in values]


def parse_commit(text: str) -> tuple[str, str]:
    """"repo/commit-id" -> (repo, commit-id). IDs contain a slash (master/0), so
    the split is at the first one; "repo" alone gives an empty ID."""
    repo, _, commit_id = text.partition("/")
    return repo, commit_id


FromCommit = str | tuple[str, str] | pfs_pb2.Commit
"""The commit a diff starts from: an ID in the file's own repo, (repo, id) or a Commit; "" for none."""


def _file(target: CommitLike, path: str) -> pfs_pb2.File:
    return pfs_pb2.File(commit=as_commit(target), path=path)


def _diff(file: pfs_pb2.File, from_commit: FromCommit, full_file: bool) -> pfs_pb2.DiffMethod | None:
    if not from_commit:
        return None
    base = commit(file.commit.repo.name, from_commit) if isinstance(from_commit, str) else as_commit(from_commit)
    return pfs_pb2.DiffMethod(from_commit=base, full_file=full_file)


def _chunks(data: Data, progress: Progress | None = None) -> Iterator[bytes | memoryview]:
    """The data in chunks of CHUNK bytes, never all of it in memory at once (given bytes: views of them)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        source: Iterable[bytes | memoryview] = (view[i : i + CHUNK] for i in range(0, len(view), CHUNK))
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


_VALUE = encoding.key(3, encoding.LEN)  # PutFileRequest.value


def _put_file_requests(into: pfs_pb2.Commit, files: Iterable[tuple[str, Data]], delimiter: int,
                       progress: Progress | None) -> Iterator[bytes]:
    """PutFile's requests as wire bytes: a file's first request names it (pachd reads a named file
    as the start of the next), and each carries a chunk of the data as its `value`, written after
    the other fields (protobuf reads fields in any order). A chunk is copied once, not into a
    message and again out of it (pachctl's CPU for a 1 GiB put over the stream: 1.30 -> 1.16 s)."""
    for path, data in files:
        header = pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=into, path=path), delimiter=delimiter,  # type: ignore[arg-type]
                                        file_type=pfs_pb2.FILE_TYPE_REGULAR).SerializeToString()
        for chunk in _chunks(data, progress):
            yield b"".join((header, _VALUE, encoding.varint(len(chunk)), chunk))
            header = b""
        if header:  # an empty file still needs its header
            yield header


def _descriptor(out: BinaryIO) -> int | None:
    """The file descriptor under `out`, if it has one (an in-memory buffer has none)."""
    try:
        return out.fileno()
    except (OSError, ValueError, AttributeError):
        return None


def _until_packable(files: Iterator[tuple[str, Data]], stop: list[tuple[str, Data]]) -> Iterator[tuple[str, Data]]:
    """The files up to the first packable one after the first, which goes into `stop` instead."""
    for index, (path, data) in enumerate(files):
        if index and packing.packable(data):
            stop.append((path, data))
            return
        yield path, data


class FileReader(io.RawIOBase):
    """A file-like view of a GetFile stream: read() it, iterate it for chunks as
    they come, and close it (or use it as a context manager) to end the stream early."""

    def __init__(self, chunks: Iterator[bytes], cancel: Callable[[], object] | None = None) -> None:
        """`chunks`: the file's bytes as they arrive; `cancel` ends the call under them."""
        self._chunks = chunks
        self._cancel = cancel
        self._pending = b""

    def readable(self) -> bool:
        """Always True: a FileReader is for reading."""
        return True

    def close(self) -> None:
        """Ends the stream (pachd stops sending) and closes the reader."""
        if not self.closed and self._cancel is not None:
            self._cancel()
        super().close()

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fills `buffer` with the next bytes; 0 at the end of the file."""
        if self.closed:
            raise ValueError("read of a closed FileReader")
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

    def __iter__(self) -> Iterator[bytes]:
        """The file's bytes in chunks as they come (not lines)."""
        if self.closed:
            raise ValueError("read of a closed FileReader")
        if self._pending:
            yield self._pending
            self._pending = b""
        yield from self._chunks


class PfsClient(Connection):
    """Repos, commits and files: pachd's pfs.API."""

    def __init__(self, address: str, **kwargs: object) -> None:
        """See Connection; the Client passes everything on."""
        super().__init__(address, **kwargs)  # type: ignore[arg-type]
        self._fast_path: local.LocalSocket | None = None
        self._fast_path_asked = False

    @functools.cached_property
    def _pfs(self) -> pfs_pb2_grpc.APIStub:
        return pfs_pb2_grpc.APIStub(self._channel)

    # -- repos ------------------------------------------------------------------

    @translated
    def create_repo(self, name: str, provenance: Sequence[str] = ()) -> None:
        """Creates the repo; `provenance` names the repos its data comes from."""
        self._pfs.CreateRepo(pfs_pb2.CreateRepoRequest(
            repo=pfs_pb2.Repo(name=name), provenance=[pfs_pb2.Repo(name=p) for p in provenance]))

    @translated
    def inspect_repo(self, name: str) -> pfs_pb2.RepoInfo:
        """The repo's RepoInfo (size, creation time, provenance)."""
        return self._pfs.InspectRepo(pfs_pb2.InspectRepoRequest(repo=pfs_pb2.Repo(name=name)))

    @translated
    def list_repo(self, provenance: Sequence[str] = ()) -> list[pfs_pb2.RepoInfo]:
        """Every repo, or those whose provenance includes all of `provenance`."""
        request = pfs_pb2.ListRepoRequest(provenance=[pfs_pb2.Repo(name=p) for p in provenance])
        return list(self._pfs.ListRepo(request).repo_info)

    @translated
    def delete_repo(self, name: str, force: bool = False) -> None:
        """Deletes the repo and its commits; `force` even when other repos come from it."""
        self._pfs.DeleteRepo(pfs_pb2.DeleteRepoRequest(repo=pfs_pb2.Repo(name=name), force=force))

    # -- commits ----------------------------------------------------------------

    @translated
    def start_commit(self, repo: str, parent: str = "master",
                     provenance: Sequence[CommitLike] = ()) -> pfs_pb2.Commit:
        """A new open commit after `parent` (a branch name means its head)."""
        return self._pfs.StartCommit(pfs_pb2.StartCommitRequest(
            parent=commit(repo, parent), provenance=as_commits(provenance)))

    @translated
    def fork_commit(self, repo: str, parent: str, branch: str,
                    provenance: Sequence[CommitLike] = ()) -> pfs_pb2.Commit:
        """A new open commit after `parent`, on a new branch `branch`."""
        return self._pfs.ForkCommit(pfs_pb2.ForkCommitRequest(
            parent=commit(repo, parent), branch=branch, provenance=as_commits(provenance)))

    @translated
    def finish_commit(self, target: CommitLike, cancel: bool = False) -> None:
        """Finishes the open commit (its files become readable); `cancel` finishes it cancelled."""
        self._pfs.FinishCommit(pfs_pb2.FinishCommitRequest(commit=as_commit(target), cancel=cancel))

    def cancel_commit(self, target: CommitLike) -> None:
        """Finishes the open commit cancelled: pipelines do not process it."""
        self.finish_commit(target, cancel=True)

    @contextlib.contextmanager
    def commit(self, repo: str, parent: str = "master") -> Iterator[pfs_pb2.Commit]:
        """Starts a commit, finishes it after the block, or cancels it if the block raises."""
        started = self.start_commit(repo, parent)
        try:
            yield started
        except BaseException:
            self.finish_commit(started, cancel=True)
            raise
        self.finish_commit(started)

    @translated
    def archive_commit(self, commits: CommitLike | Sequence[CommitLike]) -> None:
        """Archives the commits (hidden from listings unless asked for)."""
        self._pfs.ArchiveCommit(pfs_pb2.ArchiveCommitRequest(commits=as_commits(commits)))

    @translated
    def inspect_commit(self, target: CommitLike) -> pfs_pb2.CommitInfo:
        """The commit's CommitInfo (parent, times, size, provenance)."""
        return self._pfs.InspectCommit(pfs_pb2.InspectCommitRequest(commit=as_commit(target)))

    @resumable
    def list_commit(
        self, from_commits: CommitLike | Sequence[CommitLike] = (), provenance: Sequence[CommitLike] = (),
        commit_type: int = pfs_pb2.COMMIT_TYPE_NONE, status: int = pfs_pb2.NORMAL, block: bool = False,
    ) -> list[pfs_pb2.CommitInfo]:
        """Commits of the given repos ("repo" or (repo, "") for all of a repo, a commit for its
        descendants); with `block`, waits until there is one to return."""
        request = pfs_pb2.ListCommitRequest(
            from_commits=as_commits(from_commits), provenance=as_commits(provenance),
            commit_type=commit_type, status=status, block=block,  # type: ignore[arg-type]
        )
        return list(self._pfs.ListCommit(request).commit_info)

    @translated
    def list_branch(self, repo: str, status: int = pfs_pb2.NORMAL) -> list[str]:
        """The repo's branch names."""
        request = pfs_pb2.ListBranchRequest(repo=pfs_pb2.Repo(name=repo), status=status)  # type: ignore[arg-type]
        return list(self._pfs.ListBranch(request).branches)

    @translated
    def delete_commit(self, target: CommitLike) -> None:
        """Deletes the commit."""
        self._pfs.DeleteCommit(pfs_pb2.DeleteCommitRequest(commit=as_commit(target)))

    @resumable
    def flush_commit(self, commits: CommitLike | Sequence[CommitLike], to_repos: Sequence[str] = (),
                     timeout: float | None = None) -> list[pfs_pb2.CommitInfo]:
        """Waits for every downstream commit of `commits` to finish; returns them (and `commits`)."""
        request = pfs_pb2.FlushCommitRequest(commit=as_commits(commits),
                                             to_repo=[pfs_pb2.Repo(name=r) for r in to_repos])
        return list(self._pfs.FlushCommit(request, timeout=timeout).commit_info)

    @translated
    def squash_commit(self, from_commits: Sequence[CommitLike], to_commit: CommitLike) -> None:
        """Writes the changes of `from_commits` into the open commit `to_commit`."""
        self._pfs.SquashCommit(pfs_pb2.SquashCommitRequest(
            from_commits=as_commits(from_commits), to_commit=as_commit(to_commit)))

    @translated
    def replay_commit(self, from_commits: Sequence[CommitLike], to_branch: str) -> list[pfs_pb2.Commit]:
        """Replays `from_commits` onto `to_branch`, one new commit each; returns those."""
        return list(self._pfs.ReplayCommit(pfs_pb2.ReplayCommitRequest(
            from_commits=as_commits(from_commits), to_branch=to_branch)).commit)

    # -- files ------------------------------------------------------------------

    @translated
    def put_file(self, target: CommitLike, path: str, data: Data, delimiter: int = LINE,
                 progress: Progress | None = None) -> None:
        """Appends `data` to the file in the open commit, streamed in CHUNK-byte messages."""
        self.put_files(target, [(path, data)], delimiter, progress)

    @translated
    def put_files(self, target: CommitLike, files: Iterable[tuple[str, Data]], delimiter: int = LINE,
                  progress: Progress | None = None) -> None:
        """Appends to many (path, data) files, in order. Files given as bytes under
        packing.SMALL_FILE go, once there are many, packed into blocks and named in bounded
        PutFileRefs calls (see packing.py); the rest go in PutFile streams, each file
        starting with a message naming it (pachd reads a named file as the start of the next)."""
        into = as_commit(target)
        items = iter(files)
        queue = collections.deque(itertools.islice(items, packing.PACK_AFTER))
        packer = packing.Packer(self._channel, into, self.metadata or None)
        if len(queue) < packing.PACK_AFTER or not packer.supported():  # few files, or a pachd of v1.2
            self._stream_files(into, itertools.chain(queue, items), delimiter, progress)
            return
        try:
            while (item := queue.popleft() if queue else next(items, None)) is not None:
                path, data = item
                if packing.packable(data):
                    packer.add(path, data)
                    if progress is not None:
                        progress(len(data))
                    continue
                packer.flush()  # what came before is written first: appends keep their order
                stop: list[tuple[str, Data]] = []
                items = itertools.chain([item], list(queue), items)
                self._stream_files(into, _until_packable(items, stop), delimiter, progress)
                queue = collections.deque(stop)
            packer.flush()
        except BaseException:
            packer.cancel()
            raise

    def _stream_files(self, into: pfs_pb2.Commit, files: Iterable[tuple[str, Data]], delimiter: int,
                      progress: Progress | None) -> None:
        self._put_file_encoded(_put_file_requests(into, files, delimiter, progress), metadata=self.metadata or None)

    @functools.cached_property
    def _put_file_encoded(self) -> grpc.StreamUnaryMultiCallable[bytes, empty_pb2.Empty]:
        """PutFile taking requests already encoded (_put_file_requests)."""
        return self._channel.stream_unary("/pfs.API/PutFile", request_serializer=None,
                                          response_deserializer=empty_pb2.Empty.FromString)

    @translated
    def put_file_url(self, target: CommitLike, path: str, url: str, delimiter: int = NONE) -> None:
        """pachd fetches `url` itself and appends it to the file."""
        request = pfs_pb2.PutFileRequest(file=_file(target, path), url=url, delimiter=delimiter,  # type: ignore[arg-type]
                                         file_type=pfs_pb2.FILE_TYPE_REGULAR)
        self._pfs.PutFile(iter([request]))

    @translated
    def make_directory(self, target: CommitLike, path: str) -> None:
        """Creates an empty directory in the open commit."""
        request = pfs_pb2.PutFileRequest(file=_file(target, path), file_type=pfs_pb2.FILE_TYPE_DIR)
        self._pfs.PutFile(iter([request]))

    def get_file(self, target: CommitLike, path: str, offset: int = 0, size: int = 0, from_commit: FromCommit = "",
                 full_file: bool = False, shard: pfs_pb2.Shard | None = None) -> FileReader:
        """A file-like reader over the file's bytes (from `offset`, `size` of them if not 0,
        narrowed by shard, and by the diff from `from_commit`)."""
        file = _file(target, path)
        request = pfs_pb2.GetFileRequest(file=file, offset_bytes=offset, size_bytes=size, shard=shard,
                                         diff_method=_diff(file, from_commit, full_file))
        responses = self._pfs.GetFile(request)
        return FileReader((value.value for value in stream(responses)), cancel=responses.cancel)

    def get_file_bytes(self, target: CommitLike, path: str, offset: int = 0, size: int = 0,
                       from_commit: FromCommit = "", full_file: bool = False,
                       shard: pfs_pb2.Shard | None = None) -> bytes:
        """The file's bytes, all at once (see get_file)."""
        with self.get_file(target, path, offset, size, from_commit, full_file, shard) as reader:
            return b"".join(reader)

    def copy_file(self, target: CommitLike, path: str, out: BinaryIO, offset: int = 0, size: int = 0,
                  progress: Progress | None = None) -> int:
        """Writes the file's bytes (from `offset`, `size` of them if not 0) to `out`; returns how many.
        Through the same-machine fast path where pachd offers it (local.py), else the GetFile stream."""
        file = as_commit(target)
        fd = _descriptor(out)
        fast = self._local_socket() if fd is not None else None
        if fast is not None:
            out.flush()
            try:
                return fast.get(file.repo.name, file.id, path, out.fileno(), offset=offset, size=size,
                                progress=progress)
            except local.Unreachable:
                pass
        if fd is None:
            write: Callable[[memoryview], object] = out.write
        else:  # straight to the descriptor, after what `out` holds
            out.flush()
            write = functools.partial(reading.write_all, fd)
        return self._copy(file, path, write, offset, size, progress)

    @translated
    def _copy(self, file: pfs_pb2.Commit, path: str, write: Callable[[memoryview], object], offset: int, size: int,
              progress: Progress | None) -> int:
        """copy_file over the GetFile stream: each reply's value handed to `write` as it comes."""
        return reading.write(self._get_values(file, path, offset, size), write, progress)

    def _get_values(self, file: pfs_pb2.Commit, path: str, offset: int, size: int) -> Iterable[memoryview]:
        """A GetFile stream's values, not copied out of the replies (see reading.value)."""
        request = pfs_pb2.GetFileRequest(file=pfs_pb2.File(commit=file, path=path), offset_bytes=offset,
                                         size_bytes=size)
        return self._get_file_values(request)

    @functools.cached_property
    def _get_file_values(self) -> grpc.UnaryStreamMultiCallable[pfs_pb2.GetFileRequest, memoryview]:
        return self._channel.unary_stream("/pfs.API/GetFile", request_serializer=pfs_pb2.GetFileRequest.SerializeToString,
                                          response_deserializer=reading.value)

    @translated
    def put_local_file(self, target: CommitLike, path: str, source: str | os.PathLike[str], delimiter: int = LINE,
                       progress: Progress | None = None) -> None:
        """Appends the local file `source` to the file in the open commit: pachd reads it itself
        through the same-machine fast path where it offers one (local.py), else it is streamed."""
        into = as_commit(target)
        with open(source, "rb") as handle:
            fast = self._local_socket()
            if fast is not None:
                try:
                    fast.put(into.repo.name, into.id, path, handle.fileno(), delimiter)
                    if progress is not None:
                        progress(os.fstat(handle.fileno()).st_size)
                    return
                except local.Unreachable:
                    pass
            self.put_files(into, [(path, handle)], delimiter, progress)

    def _local_socket(self) -> local.LocalSocket | None:
        """pachd's fast path, when it is on this machine and offers one (asked once per client)."""
        if not self._fast_path_asked:
            self._fast_path_asked = True
            if config.local_fast_path() and local.is_loopback(self.address):
                try:
                    if not self._connected:
                        self._connect(self.connect_timeout)
                    found = self._admin.LocalSocket(pfs_admin_pb2.LocalSocketRequest())
                except (grpc.RpcError, PachydermError):  # an older pachd, or one that refuses us: the stream
                    found = None
                if found is not None and found.path:
                    self._fast_path = local.LocalSocket(found.path, self.auth_token)
        return self._fast_path

    @translated
    def inspect_file(self, target: CommitLike, path: str, from_commit: FromCommit = "", full_file: bool = False,
                     shard: pfs_pb2.Shard | None = None) -> pfs_pb2.FileInfo:
        """The file's (or directory's) FileInfo."""
        file = _file(target, path)
        return self._pfs.InspectFile(pfs_pb2.InspectFileRequest(
            file=file, shard=shard, diff_method=_diff(file, from_commit, full_file)))

    @translated
    def list_file(self, target: CommitLike, path: str = "/", from_commit: FromCommit = "", full_file: bool = False,
                  shard: pfs_pb2.Shard | None = None, mode: int = pfs_pb2.ListFile_NORMAL) -> list[pfs_pb2.FileInfo]:
        """The entries of the directory `path` (its files and directories; all below with ListFile_RECURSE)."""
        file = _file(target, path)
        return list(self._pfs.ListFile(pfs_pb2.ListFileRequest(
            file=file, shard=shard, diff_method=_diff(file, from_commit, full_file),
            mode=mode)).file_info)  # type: ignore[arg-type]

    def walk_files(self, target: CommitLike, path: str = "/", from_commit: FromCommit = "", full_file: bool = False,
                   shard: pfs_pb2.Shard | None = None) -> Iterator[pfs_pb2.FileInfo]:
        """Every file (not directory) below `path`, one ListFile per directory."""
        for info in self.list_file(target, path, from_commit, full_file, shard):
            if info.file_type == pfs_pb2.FILE_TYPE_DIR:
                yield from self.walk_files(target, info.file.path, from_commit, full_file, shard)
            else:
                yield info

    @translated
    def delete_file(self, target: CommitLike, path: str) -> None:
        """Deletes the file (or directory) in the open commit."""
        self._pfs.DeleteFile(pfs_pb2.DeleteFileRequest(file=_file(target, path)))

    @translated
    def delete_all(self) -> None:
        """Deletes every repo and commit."""
        self._pfs.DeleteAll(empty_pb2.Empty())

    @translated
    def archive_all(self) -> None:
        """Archives every commit."""
        self._pfs.ArchiveAll(empty_pb2.Empty())
