"""Who is calling: the admin token of --auth-token-file, and pods' job credentials.

A pod's credential names its job and is signed with a secret all replicas
share (kept in the metadata store): `<job id>.<HMAC-SHA256 of the id>`. It
reaches the pod in PACH_JOB_TOKEN and comes back as a bearer token. With an
admin token configured, the interceptor refuses every call but health and
version that carries neither it nor a job credential. A call with a job
credential may touch only its job's repos and commits (PodScopeInterceptor,
pachd/pps/scope.py), with or without an admin token; InternalJobService checks
that the credential is for the very job named (pps/service.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from pachd.errors import PermissionDenied
from pachd.interceptors import Handler, rewrap
from pachd.pfs.wire import PutFileMessage
from pachd.pps import keys
from pachd.pps.scope import PodScopes
from pachd.storage.kv import KV, Compare, Put

AUTHORIZATION = "authorization"
_OPEN = ("/health.Health/", "/protoversion.API/")


class PodCredentials:
    """Issues and checks job credentials."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    async def load(cls, kv: KV) -> PodCredentials:
        """The shared secret, made by the first replica that needs it."""
        key = keys.pod_secret()
        found = await kv.get(key)
        if found is None:
            await kv.txn([Compare(key, 0)], [Put(key, secrets.token_hex(32).encode())])
            found = await kv.get(key)
        assert found is not None
        return cls(found.value)

    @property
    def cluster(self) -> str:
        """A short name of this cluster, the same on every replica, that reveals nothing of the secret."""
        return hmac.new(self._secret, b"cluster", hashlib.sha256).hexdigest()[:12]

    def token(self, job_id: str) -> str:
        return f"{job_id}.{self._sign(job_id)}"

    def job_of(self, token: str) -> str | None:
        """The job a genuine credential is for; None for anything else."""
        job_id, _, signature = token.rpartition(".")
        if job_id and hmac.compare_digest(signature, self._sign(job_id)):
            return job_id
        return None

    def _sign(self, job_id: str) -> str:
        return hmac.new(self._secret, job_id.encode(), hashlib.sha256).hexdigest()


def bearer(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The bearer token of a call's metadata, if it has one."""
    for key, value in metadata or ():
        if key == AUTHORIZATION and isinstance(value, str) and value.startswith("Bearer "):
            return value[len("Bearer "):].strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Refuses calls without the admin token or a job credential (when an admin token is set)."""

    def __init__(self, *, admin_token: str, credentials: PodCredentials) -> None:
        self._admin = admin_token
        self._credentials = credentials

    def refusal(self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
        """Why the call may not go on; None when it may."""
        if not self._admin or method.startswith(_OPEN):
            return None
        token = bearer(metadata)
        if token is None:
            return ("pachd requires authentication: set PACH_AUTH_TOKEN to the token in pachd's "
                    "--auth-token-file")
        if hmac.compare_digest(token, self._admin):
            return None
        if self._credentials.job_of(token) is not None:
            return None  # what it may touch: PodScopeInterceptor
        return "the token given is not pachd's (check PACH_AUTH_TOKEN)"

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        reason = self.refusal(handler_call_details.method, handler_call_details.invocation_metadata)
        if handler is None or reason is None:
            return handler

        async def refuse(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, reason)

        return rewrap(handler, lambda _: refuse)


def _commit_repos(*commits: Any) -> list[str]:
    return [c.repo.name for c in commits]


def _file_repos(request: Any) -> list[str]:
    """The repos a file read names: its commit's, and its diff's base commit's."""
    repos = _commit_repos(request.file.commit)
    if request.HasField("diff_method") and request.diff_method.HasField("from_commit"):
        repos += _commit_repos(request.diff_method.from_commit)
    return repos


def _listed_repos(request: Any) -> list[str]:
    commits = [*request.from_commits, *request.provenance]
    return _commit_repos(*commits) if request.from_commits else [""]  # none named: every repo


# What a pod may call, and the repos each call reads or the commit it writes.
_POD_READS: dict[str, Callable[[Any], list[str]]] = {
    "/pfs.API/InspectRepo": lambda r: [r.repo.name],
    "/pfs.API/ListBranch": lambda r: [r.repo.name],
    "/pfs.API/InspectCommit": lambda r: _commit_repos(r.commit),
    "/pfs.API/ListCommit": _listed_repos,
    "/pfs.API/GetFile": _file_repos,
    "/pfs.API/InspectFile": _file_repos,
    "/pfs.API/ListFile": _file_repos,
    "/pachpy.pods.PodData/ListFileRefs": lambda r: _commit_repos(r.commit),
}


def _put_file_commit(message: PutFileMessage) -> Any:
    """The commit a PutFile request (as wire.put_file_request decodes it) writes, None if it names none."""
    header = message.header
    return header.file.commit if header is not None and header.HasField("file") else None


_POD_WRITES: dict[str, Callable[[Any], Any]] = {  # the Commit written, None for a message naming none
    "/pfs.API/PutFile": _put_file_commit,
    "/pfs.API/DeleteFile": lambda r: r.file.commit,
    "/pachpy.pods.PodData/PutFileRefs": lambda r: r.commit,
}
# Blocks are named by the SHA-512 of their content: a pod reads only those its
# listings gave it. ListRepo shows names and sizes, no data (FUSE pods list the root).
_POD_FREE = frozenset({
    "/pfs.BlockAPI/GetBlock", "/pfs.BlockAPI/PutBlock", "/pfs.BlockAPI/InspectBlock", "/pfs.API/ListRepo",
    "/pachyderm.pps.InternalJobAPI/StartJob", "/pachyderm.pps.InternalJobAPI/FinishJob",
})


class PodScopeInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Confines a call that carries a job credential to what its job may touch.

    It sits inside ErrorInterceptor, so a refusal is a PermissionDenied like any other.
    """

    def __init__(self, *, credentials: PodCredentials, scopes: PodScopes) -> None:
        self._credentials = credentials
        self._scopes = scopes

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        token = bearer(handler_call_details.invocation_metadata)
        job_id = self._credentials.job_of(token) if token else None
        if handler is None or job_id is None or method.startswith(_OPEN) or method in _POD_FREE:
            return handler
        scopes = self._scopes
        reads, writes = _POD_READS.get(method), _POD_WRITES.get(method)

        async def check(request: Any) -> None:
            if reads is not None:
                await scopes.check_read(job_id, reads(request))
            elif writes is not None:
                commit = writes(request)
                if commit is not None:
                    await scopes.check_write(job_id, commit.repo.name, commit.id)
            else:
                raise PermissionDenied(f"job {job_id}'s credential does not open {method}",
                                       hint="pods may read their inputs and write their own output only")

        async def checked(requests: Any) -> Any:
            async for request in requests:
                await check(request)
                yield request

        async def allowed(request: Any) -> Any:
            """The request checked now, or a stream of requests checked as they arrive."""
            if handler.request_streaming:
                return checked(request)
            await check(request)
            return request

        def confine(behaviour: Callable[..., Any]) -> Callable[..., Any]:
            if handler.response_streaming:
                async def streaming(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                    async for reply in behaviour(await allowed(request), context):
                        yield reply
                return streaming

            async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                return await behaviour(await allowed(request), context)
            return unary

        return rewrap(handler, confine)
