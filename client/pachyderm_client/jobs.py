"""JobsClient: our own job service (pachpy.jobs.Jobs): following logs, failure reasons."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from pachyderm_client._base import Connection, stream, translated
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pps_jobs_pb2, pps_jobs_pb2_grpc, pps_pb2
else:  # loaded by the first call (see _lazy.py)
    pps_jobs_pb2, pps_jobs_pb2_grpc = lazy_module("pachyderm_client.proto.pps_jobs_pb2"), lazy_module("pachyderm_client.proto.pps_jobs_pb2_grpc")
    pps_pb2 = lazy_module("pachyderm_client.proto.pps_pb2")


class JobsClient(Connection):
    """Our own job service (pachpy.jobs.Jobs): logs that follow a job, why jobs failed."""

    @functools.cached_property
    def _jobs(self) -> pps_jobs_pb2_grpc.JobsStub:
        return pps_jobs_pb2_grpc.JobsStub(self._channel)

    @translated
    def follow_logs(self, job_id: str) -> Iterator[bytes]:
        """Like get_logs, then each new line as the pods print it, until the job has ended."""
        responses = self._jobs.FollowLogs(pps_pb2.GetLogsRequest(job=pps_pb2.Job(id=job_id)),
                                          metadata=self.metadata or None)
        return (value.value for value in stream(responses))

    @translated
    def get_failures(self, job_ids: Sequence[str], last_lines: int | None = None) -> list[pps_jobs_pb2.Failure]:
        """Why the failed jobs among `job_ids` failed (jobs that did not fail have no entry)."""
        request = pps_jobs_pb2.GetFailuresRequest(jobs=[pps_pb2.Job(id=j) for j in job_ids])
        if last_lines is not None:
            request.last_lines = last_lines
        return list(self._jobs.GetFailures(request, metadata=self.metadata or None).failures)
