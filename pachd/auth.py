"""Who is calling: the admin token of --auth-token-file, and pods' job credentials.

A pod's credential names its job and is signed with a secret all replicas
share (kept in the metadata store): `<job id>.<HMAC-SHA256 of the id>`. It
reaches the pod in PACH_JOB_TOKEN and comes back as a bearer token. With an
admin token configured, the interceptor refuses every call but health and
version that carries neither it nor a job credential; a job credential opens
PFS and the pod protocol, never the pipeline API. InternalJobService checks
that the credential is for the very job named (pps/service.py).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import grpc

from pachd.interceptors import Handler, rewrap
from pachd.pps import keys
from pachd.storage.kv import KV, Compare, Put

AUTHORIZATION = "authorization"
_OPEN = ("/health.Health/", "/protoversion.API/")
_ADMIN_ONLY = "/pachyderm.pps.API/"


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
        if self._credentials.job_of(token) is not None and not method.startswith(_ADMIN_ONLY):
            return None
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
