"""The Python client for pachd, shared by pachctl, the job shim and the tests.

    from pachyderm_client import Client, NotFoundError

    with Client("127.0.0.1:30650") as client:
        client.create_repo("data")
        with client.commit("data", "master") as commit:
            client.put_file(commit, "sales", open("set1.txt", "rb"))
        with client.get_file("data/master", "sales") as reader:
            print(reader.read())

A commit is "repo/id", (repo, id) or a pfs_pb2.Commit wherever one is taken;
errors are PachydermError subclasses chosen by gRPC status code. The generated
protobuf and gRPC modules are in pachyderm_client.proto.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import grpc
from google.protobuf import empty_pb2

from pachyderm_client import config
from pachyderm_client._base import CONNECT_SECONDS, RECONNECT_SECONDS, translated
from pachyderm_client.admin import AdminClient
from pachyderm_client.errors import (
    AbortedError,
    AlreadyExistsError,
    CancelledError,
    DataLossError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    OutOfRangeError,
    PachydermError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
    from_rpc_error,
)
from pachyderm_client.internal import InternalJobClient, pod_metadata
from pachyderm_client.jobs import JobsClient
from pachyderm_client.pfs import CommitLike, FileReader, PfsClient, as_commit, commit, parse_commit
from pachyderm_client.pps import PpsClient, method, pipeline_input, pipeline_request
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import health_pb2_grpc, protoversion_pb2, protoversion_pb2_grpc
else:  # loaded by the first call that needs them (see _lazy.py)
    health_pb2_grpc = lazy_module("pachyderm_client.proto.health_pb2_grpc")
    protoversion_pb2 = lazy_module("pachyderm_client.proto.protoversion_pb2")
    protoversion_pb2_grpc = lazy_module("pachyderm_client.proto.protoversion_pb2_grpc")


class Client(PfsClient, PpsClient, JobsClient, InternalJobClient, AdminClient):
    """All of pachd's services over one connection (ADDRESS, or 0.0.0.0:30650, by default);
    a context manager that closes the connection at the end of its block."""

    def __init__(self, address: str | None = None, *, tls_ca: bytes | None = None,
                 metadata: tuple[tuple[str, str], ...] = (), auth_token: str | None = None,
                 connect_timeout: float = CONNECT_SECONDS, reconnect_timeout: float = RECONNECT_SECONDS) -> None:
        """`address`: host:port (ADDRESS, the config file's, or 0.0.0.0:30650 by default); `tls_ca`: the CA
        certificate to trust (PACHD_TLS_CA's file by default; None: no TLS); `auth_token`: pachd's token
        (--auth-token-file; PACH_AUTH_TOKEN by default). connect_timeout bounds the wait for a first
        connection; reconnect_timeout, how long waiting calls (flush_commit, list_commit, inspect_job)
        wait for a pachd that went away under them to come back."""
        super().__init__(address or config.address(), tls_ca=tls_ca if tls_ca is not None else config.tls_ca(),
                         metadata=metadata, auth_token=auth_token if auth_token is not None else config.auth_token(),
                         connect_timeout=connect_timeout, reconnect_timeout=reconnect_timeout)

    @functools.cached_property
    def _health(self) -> health_pb2_grpc.HealthStub:
        return health_pb2_grpc.HealthStub(self._channel)

    @functools.cached_property
    def _version(self) -> protoversion_pb2_grpc.APIStub:
        return protoversion_pb2_grpc.APIStub(self._channel)

    @translated
    def get_version(self) -> protoversion_pb2.Version:
        """pachd's version (major, minor, micro, additional)."""
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
    "AbortedError", "AlreadyExistsError", "CancelledError", "Client", "CommitLike", "DataLossError",
    "DeadlineExceededError", "FailedPreconditionError", "FileReader", "InternalError", "InvalidArgumentError",
    "NotFoundError", "OutOfRangeError", "PachydermError", "PermissionDeniedError", "ResourceExhaustedError",
    "UnauthenticatedError", "UnavailableError", "UnimplementedError", "as_commit", "commit", "method",
    "parse_commit", "pipeline_input", "pipeline_request", "pod_metadata",
]
