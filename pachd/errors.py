"""Every error pachd reports to a client, each carrying its gRPC status code.

Domain code raises these; one interceptor (pachd/interceptors.py) turns them
into gRPC statuses. The message says what was wrong; where v1.2.3 had a text for
it, the message starts with exactly that text (clients matched on it). How to
fix it goes in `hint`, which travels beside the message in the call's trailing
metadata (HINT_KEY), never inside it. No code ever parses either.
"""

from __future__ import annotations

import grpc


HINT_KEY = "pach-hint-bin"
"""The trailing metadata key of an error's hint (binary: UTF-8 bytes)."""
ORIGIN = ("pach-origin", "pachd")
"""Trailing metadata of every error pachd reports, so clients tell it from a lost connection."""


class PachError(Exception):
    """Base of every error pachd reports to clients."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


# -- bad requests -------------------------------------------------------------


class InvalidArgument(PachError):
    """The request is malformed: a bad name, path, number or missing field."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class InvalidName(InvalidArgument):
    """A repo or pipeline name has characters other than letters, digits and _."""


class InvalidPath(InvalidArgument):
    """A file path is empty where it may not be, escapes with `..`, or has NUL."""


class InvalidCommitID(InvalidArgument):
    """A commit ID is neither a branch name nor of the form branch/number."""


class PathIsDirectory(InvalidArgument):
    """A file operation named a directory."""


class InvalidManifest(InvalidArgument):
    """A pipeline or job spec is malformed."""


class TooLarge(PachError):
    """A request exceeds a size limit."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


# -- missing things -----------------------------------------------------------


class NotFound(PachError):
    """Something the request names does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class RepoNotFound(NotFound):
    """No repo has that name."""


class CommitNotFound(NotFound):
    """No commit or branch has that ID in the repo."""


class FileNotFound(NotFound):
    """No file has that path in the commit (or in the requested shard or diff)."""


class BlockNotFound(NotFound):
    """No block has that hash."""


class PipelineNotFound(NotFound):
    """No pipeline has that name."""


class JobNotFound(NotFound):
    """No job has that ID."""


# -- conflicts with existing state ------------------------------------------


class AlreadyExists(PachError):
    """Something the request would create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class RepoExists(AlreadyExists):
    """A repo with that name exists already."""


class CommitExists(AlreadyExists):
    """A commit with that ID exists already (e.g. a branch being forked anew)."""


class PipelineExists(AlreadyExists):
    """A pipeline with that name exists already."""


class FailedPrecondition(PachError):
    """The request is well formed but the current state does not allow it."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class CommitFinished(FailedPrecondition):
    """The commit is finished; finished commits cannot be written or deleted."""


class CommitNotOpen(FailedPrecondition):
    """The operation needs an open commit."""


class CommitCancelled(FailedPrecondition):
    """A commit the request waits for was cancelled."""


class FileTypeConflict(FailedPrecondition):
    """A path is a file where a directory is needed, or the other way round."""


class RepoInUse(FailedPrecondition):
    """The repo is the provenance of other repos or the input of a pipeline."""


class JobStateConflict(FailedPrecondition):
    """A job is not in a state that allows the request (e.g. all pods started)."""


# -- the server itself --------------------------------------------------------


class Unavailable(PachError):
    """A backend (etcd, block storage, executor) cannot be reached right now."""

    code = grpc.StatusCode.UNAVAILABLE


class StorageError(Unavailable):
    """The metadata store or block store failed; the request may be retried."""


class DiskFull(StorageError):
    """The disk under the data dir has no room left; free space, and pachd carries on."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Compacted(StorageError):
    """A watch asked for history the metadata store has already compacted."""


class Aborted(PachError):
    """A concurrent change made the request lose a race too many times."""

    code = grpc.StatusCode.ABORTED


class Unimplemented(PachError):
    """The RPC exists in the wire API but this server does not offer it."""

    code = grpc.StatusCode.UNIMPLEMENTED


# -- who may ask --------------------------------------------------------------


class Unauthenticated(PachError):
    """The call carries no credential, or one pachd does not know."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(PachError):
    """The caller is known but may not do this (a pod speaking for another job,
    a URL pachd will not fetch for a client)."""

    code = grpc.StatusCode.PERMISSION_DENIED
