"""InternalJobClient: the pod side of the job protocol (StartJob, FinishJob)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pachyderm_client._base import Connection, translated
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pps_internal_pb2, pps_internal_pb2_grpc, pps_pb2
else:  # loaded by the first call (see _lazy.py): only the shim makes one
    pps_internal_pb2, pps_internal_pb2_grpc = lazy_module("pachyderm_client.proto.pps_internal_pb2"), lazy_module(
        "pachyderm_client.proto.pps_internal_pb2_grpc")
    pps_pb2 = lazy_module("pachyderm_client.proto.pps_pb2")

POD_INDEX_KEY = "pach-pod-index"
POD_NAME_KEY = "pach-pod-name"
EXIT_CODE_KEY = "pach-exit-code"


def pod_metadata(index: int | None, name: str) -> tuple[tuple[str, str], ...]:
    """Who this pod is, sent with each call so pachd can tell pods apart."""
    metadata = []
    if index is not None:
        metadata.append((POD_INDEX_KEY, str(index)))
    if name:
        metadata.append((POD_NAME_KEY, name))
    return tuple(metadata)


class InternalJobClient(Connection):
    """What a job's pods call (pachyderm.pps.InternalJobAPI), as the job shim does."""

    @functools.cached_property
    def _internal(self) -> pps_internal_pb2_grpc.InternalJobAPIStub:
        return pps_internal_pb2_grpc.InternalJobAPIStub(self._channel)

    @translated
    def start_job(self, job_id: str) -> pps_internal_pb2.StartJobResponse:
        """A pod of the job starts: what it runs and on which data."""
        return self._internal.StartJob(pps_internal_pb2.StartJobRequest(job=pps_pb2.Job(id=job_id)),
                                       metadata=self.metadata or None)

    @translated
    def finish_job(self, job_id: str, pod_index: int, success: bool, exit_code: int | None = None) -> None:
        """Reports the pod's result; `exit_code`, the code's, tells pachd why it failed."""
        metadata = (*self.metadata, (EXIT_CODE_KEY, str(exit_code))) if exit_code is not None else self.metadata
        self._internal.FinishJob(
            pps_internal_pb2.FinishJobRequest(job=pps_pb2.Job(id=job_id), success=success, pod_index=pod_index),
            metadata=metadata or None,
        )
