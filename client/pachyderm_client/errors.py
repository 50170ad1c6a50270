"""Every error the client raises, one class per family of gRPC status code.

`from_rpc_error` is the single place that turns a grpc.RpcError into one of
these, by its status code alone: callers test the class, never the message.
`message` is pachd's text (v1.2.3's, where v1.2.3 had one); `hint`, how to fix
it, arrives beside it in the trailing metadata and may be empty.
"""

from __future__ import annotations

import grpc


HINT_KEY = "pach-hint-bin"
"""The trailing metadata key under which pachd sends an error's hint (UTF-8)."""
ORIGIN_KEY = "pach-origin"
"""Present in the trailing metadata of every error pachd itself reported (not a lost connection)."""


class PachydermError(Exception):
    """Base of the client's errors; `code` is the gRPC status code, `details` pachd's
    message (also `message`), `hint` how to fix it (or "")."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, code: grpc.StatusCode | None = None, hint: str = "") -> None:
        """`message`: pachd's text; `code`: the status code (the class's own by default); `hint`: how to fix it."""
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    @property
    def details(self) -> str:
        """pachd's message, as gRPC calls it (the status details)."""
        return self.message


class CancelledError(PachydermError):
    """The call was cancelled (by the caller, or by pachd shutting down)."""

    code = grpc.StatusCode.CANCELLED


class InvalidArgumentError(PachydermError):
    """The request was malformed (bad name, path, ID, manifest)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFoundError(PachydermError):
    """A repo, commit, file, job or pipeline does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExistsError(PachydermError):
    """What the request would create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPreconditionError(PachydermError):
    """The current state does not allow the request (e.g. a finished commit)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhaustedError(PachydermError):
    """A size limit was exceeded."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class AbortedError(PachydermError):
    """The request lost a race with concurrent changes; retrying may work."""

    code = grpc.StatusCode.ABORTED


class UnavailableError(PachydermError):
    """pachd (or one of its backends) cannot be reached."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceededError(PachydermError):
    """The call took longer than its deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class UnimplementedError(PachydermError):
    """The server does not offer this call."""

    code = grpc.StatusCode.UNIMPLEMENTED


class PermissionDeniedError(PachydermError):
    """The caller may not make this call (a job's credential outside its job)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class UnauthenticatedError(PachydermError):
    """pachd requires a token (--auth-token-file) and the call had none, or a wrong one."""

    code = grpc.StatusCode.UNAUTHENTICATED


class OutOfRangeError(PachydermError):
    """An offset or size lies outside what exists."""

    code = grpc.StatusCode.OUT_OF_RANGE


class DataLossError(PachydermError):
    """Stored data is missing or corrupt."""

    code = grpc.StatusCode.DATA_LOSS


class InternalError(PachydermError):
    """pachd failed unexpectedly; its log has the details."""

    code = grpc.StatusCode.INTERNAL


_BY_CODE: dict[grpc.StatusCode, type[PachydermError]] = {
    cls.code: cls
    for cls in (
        CancelledError, InvalidArgumentError, NotFoundError, AlreadyExistsError, FailedPreconditionError,
        ResourceExhaustedError, AbortedError, UnavailableError, DeadlineExceededError, UnimplementedError,
        PermissionDeniedError, UnauthenticatedError, OutOfRangeError, DataLossError, InternalError,
    )
}


def hint_of(err: grpc.RpcError) -> str:
    """The hint pachd put in the call's trailing metadata, or ""."""
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for item in trailing or ():
        key, value = item.key, item.value  # grpc's _Metadatum, a (key, value) named tuple
        if key == HINT_KEY:
            return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return ""


def from_rpc_error(err: grpc.RpcError) -> PachydermError:
    """The typed error for a failed call, chosen by its status code alone."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    return _BY_CODE.get(code, PachydermError)(details or str(code), code, hint_of(err))


def from_status(code: str, message: str, hint: str = "") -> PachydermError:
    """The typed error for a status pachd reported by name ("NOT_FOUND") outside gRPC (the fast path)."""
    status = getattr(grpc.StatusCode, code, grpc.StatusCode.UNKNOWN)
    return _BY_CODE.get(status, PachydermError)(message or str(status), status, hint)
