"""The Python client for pachd, shared by pachctl, the job shim and the tests.

    from pachctl.client import Client
    with Client("127.0.0.1:30650") as client:
        client.create_repo("data")
        with client.commit("data", "master") as commit:
            client.put_file("data", commit.id, "sales", open("set1.txt", "rb"))
"""

from __future__ import annotations

from google.protobuf import empty_pb2

from pachctl import config
import grpc

from pachctl.client._base import CONNECT_SECONDS, RECONNECT_SECONDS, translated
from pachctl.client.admin import AdminClient
from pachctl.client.errors import (
    AbortedError,
    from_rpc_error,
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PachydermError,
    UnavailableError,
)
from pachctl.client.internal import InternalJobClient, pod_metadata
from pachctl.client.jobs import JobsClient
from pachctl.client.pfs import FileReader, PfsClient, commit, parse_commit
from pachctl.client.pps import PpsClient
from protos import health_pb2_grpc, protoversion_pb2, protoversion_pb2_grpc


class Client(PfsClient, PpsClient, JobsClient, InternalJobClient, AdminClient):
    """All of pachd's services over one connection (ADDRESS, or 0.0.0.0:30650, by default)."""

    def __init__(self, address: str | None = None, *, tls_ca: bytes | None = None,
                 metadata: tuple[tuple[str, str], ...] = (), auth_token: str | None = None,
                 connect_timeout: float = CONNECT_SECONDS, reconnect_timeout: float = RECONNECT_SECONDS) -> None:
        """`auth_token`: pachd's token (--auth-token-file); PACH_AUTH_TOKEN by default. connect_timeout
        bounds the wait for a first connection; reconnect_timeout, how long waiting calls (flush_commit,
        list_commit, inspect_job) wait for a pachd that went away under them to come back."""
        super().__init__(address or config.address(), tls_ca=tls_ca if tls_ca is not None else config.tls_ca(),
                         metadata=metadata, auth_token=auth_token if auth_token is not None else config.auth_token(),
                         connect_timeout=connect_timeout, reconnect_timeout=reconnect_timeout)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._version = protoversion_pb2_grpc.APIStub(self._channel)

    @translated
    def get_version(self) -> protoversion_pb2.Version:
        return self._version.GetVersion(empty_pb2.Empty())

    def health(self, timeout: float | None = None) -> None:
        """Returns once pachd answers; with a timeout, waits up to that long for it to come up."""
        try:
            self._health.Health(empty_pb2.Empty(), timeout=timeout, wait_for_ready=timeout is not None)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    def delete_all(self) -> None:
        """Everything: pipelines and jobs first, then repos and commits."""
        self.delete_all_pipelines()
        super().delete_all()


__all__ = [
    "AbortedError", "AlreadyExistsError", "Client", "FailedPreconditionError", "FileReader", "InvalidArgumentError",
    "NotFoundError", "PachydermError", "UnavailableError", "commit", "parse_commit", "pod_metadata",
]
