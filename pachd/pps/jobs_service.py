"""Our own job service (pachpy.jobs.Jobs): logs that follow a job, and why jobs failed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import wrappers_pb2

from pachd.pps import Pps
from pachd.pps.failures import LAST_LINES, Failure

from pachyderm_client.proto import pps_jobs_pb2, pps_jobs_pb2_grpc, pps_pb2

Context = grpc.aio.ServicerContext[object, object]


class JobsService(pps_jobs_pb2_grpc.JobsServicer):
    def __init__(self, pps: Pps) -> None:
        self._pps = pps

    async def FollowLogs(self, request: pps_pb2.GetLogsRequest,
                         context: Context) -> AsyncIterator[wrappers_pb2.BytesValue]:
        await self._pps.jobs.get(request.job.id)  # a missing job is NOT_FOUND, not an empty stream
        async for line in self._pps.follow_logs(request.job.id):
            yield wrappers_pb2.BytesValue(value=line)

    async def GetFailures(self, request: pps_jobs_pb2.GetFailuresRequest, context: Context) -> pps_jobs_pb2.Failures:
        last = request.last_lines if request.HasField("last_lines") else LAST_LINES
        failures = await self._pps.failures([job.id for job in request.jobs], last)
        return pps_jobs_pb2.Failures(failures=[_failure(f) for f in failures])


def _failure(failure: Failure) -> pps_jobs_pb2.Failure:
    message = pps_jobs_pb2.Failure(job=pps_pb2.Job(id=failure.job_id), reason=failure.reason,
                                   pod_name=failure.pod_name, last_lines=failure.last_lines)
    if failure.pod_index is not None:
        message.pod_index = failure.pod_index
    if failure.exit_code is not None:
        message.exit_code = failure.exit_code
    return message
