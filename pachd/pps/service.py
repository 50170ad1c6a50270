"""The PPS gRPC services: pachyderm.pps.API and the pods' InternalJobAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2, wrappers_pb2

from pachd.auth import PodCredentials, bearer
from pachd.errors import PermissionDenied, Unauthenticated
from pachd.pfs.messages import commit_ref
from pachd.pps import Pps, messages

from pachyderm_client.proto import pps_internal_pb2, pps_internal_pb2_grpc, pps_pb2, pps_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]
EMPTY = empty_pb2.Empty()

WARNING_KEY = "pach-warning"  # trailing metadata: the call succeeded, but the client should know this
POD_INDEX_KEY = "pach-pod-index"
POD_NAME_KEY = "pach-pod-name"
EXIT_CODE_KEY = "pach-exit-code"  # with a failed FinishJob: the user code's exit code (our shim sends it)


class PpsService(pps_pb2_grpc.APIServicer):
    def __init__(self, pps: Pps) -> None:
        self._pps = pps

    async def CreateJob(self, request: pps_pb2.CreateJobRequest, context: Context) -> pps_pb2.Job:
        job = await self._pps.create_job(
            transform=messages.transform(request.transform) if request.HasField("transform") else None,
            parallelism=messages.parallelism(request.parallelism_spec),
            inputs=messages.job_inputs(request.inputs),
            pipeline=messages.pipeline_name(request.pipeline) if request.HasField("pipeline") else "",
            parent=request.parent_job.id if request.HasField("parent_job") else "",
            force=request.force,
        )
        _warn(context, self._pps.image_warning(request.transform.image))
        return pps_pb2.Job(id=job.id)

    async def InspectJob(self, request: pps_pb2.InspectJobRequest, context: Context) -> pps_pb2.JobInfo:
        return messages.job_info(await self._pps.jobs.inspect(request.job.id, block=request.block_state))

    async def ListJob(self, request: pps_pb2.ListJobRequest, context: Context) -> pps_pb2.JobInfos:
        pipeline = messages.pipeline_name(request.pipeline) if request.pipeline.name else ""
        jobs = await self._pps.jobs.list(pipeline, [commit_ref(c) for c in request.input_commit])
        return pps_pb2.JobInfos(job_info=[messages.job_info(j) for j in jobs])

    async def GetLogs(self, request: pps_pb2.GetLogsRequest, context: Context) -> AsyncIterator[wrappers_pb2.BytesValue]:
        async for line in self._pps.logs(request.job.id):
            yield wrappers_pb2.BytesValue(value=line)

    async def CreatePipeline(self, request: pps_pb2.CreatePipelineRequest, context: Context) -> empty_pb2.Empty:
        await self._pps.pipelines.create(
            messages.pipeline_name(request.pipeline),
            messages.transform(request.transform),
            messages.parallelism(request.parallelism_spec),
            messages.pipeline_inputs(request.inputs),
            update=request.update,
            no_archive=request.no_archive,
        )
        _warn(context, self._pps.image_warning(request.transform.image))
        return EMPTY

    async def InspectPipeline(self, request: pps_pb2.InspectPipelineRequest, context: Context) -> pps_pb2.PipelineInfo:
        return messages.pipeline_info(await self._pps.pipelines.inspect(messages.pipeline_name(request.pipeline)))

    async def ListPipeline(self, request: pps_pb2.ListPipelineRequest, context: Context) -> pps_pb2.PipelineInfos:
        infos = await self._pps.pipelines.list()
        return pps_pb2.PipelineInfos(pipeline_info=[messages.pipeline_info(i) for i in infos])

    async def DeletePipeline(self, request: pps_pb2.DeletePipelineRequest, context: Context) -> empty_pb2.Empty:
        await self._pps.pipelines.delete(messages.pipeline_name(request.pipeline))
        return EMPTY

    async def StartPipeline(self, request: pps_pb2.StartPipelineRequest, context: Context) -> empty_pb2.Empty:
        await self._pps.pipelines.set_stopped(messages.pipeline_name(request.pipeline), False)
        return EMPTY

    async def StopPipeline(self, request: pps_pb2.StopPipelineRequest, context: Context) -> empty_pb2.Empty:
        await self._pps.pipelines.set_stopped(messages.pipeline_name(request.pipeline), True)
        return EMPTY

    async def DeleteAll(self, request: empty_pb2.Empty, context: Context) -> empty_pb2.Empty:
        await self._pps.delete_all()
        return EMPTY


class InternalJobService(pps_internal_pb2_grpc.InternalJobAPIServicer):
    """StartJob and FinishJob, as job shims (ours or v1.2's) call them."""

    def __init__(self, pps: Pps, *, credentials: PodCredentials, allow_anonymous: bool = False) -> None:
        self._pps = pps
        self._credentials = credentials
        self._allow_anonymous = allow_anonymous

    def _authorize(self, context: Context, job_id: str) -> None:
        """Only a pod of `job_id` speaks for it: by its job credential, or with none
        where pachd allows anonymous pods (v1.2's Go shim)."""
        token = bearer(context.invocation_metadata())
        if token is None:
            if self._allow_anonymous:
                return
            raise Unauthenticated("StartJob and FinishJob need the pod's job credential (PACH_JOB_TOKEN); "
                                  "start pachd with --allow-anonymous-pods for job shims that send none")
        if self._credentials.job_of(token) != job_id:
            raise PermissionDenied(f"this credential does not speak for job {job_id}")

    async def StartJob(self, request: pps_internal_pb2.StartJobRequest, context: Context) -> pps_internal_pb2.StartJobResponse:
        self._authorize(context, request.job.id)
        index, name = _pod_identity(context)
        claim = await self._pps.jobs.claim(request.job.id, index=index, pod_name=name)
        return messages.start_job_response(claim)

    async def FinishJob(self, request: pps_internal_pb2.FinishJobRequest, context: Context) -> empty_pb2.Empty:
        self._authorize(context, request.job.id)
        _, name = _pod_identity(context)
        await self._pps.jobs.report(request.job.id, request.pod_index, success=request.success, pod_name=name,
                                    exit_code=_exit_code(context))
        return EMPTY


def _warn(context: Context, warning: str) -> None:
    if warning:
        # A text metadata value must be printable ASCII: anything else (an image named in
        # any Unicode, control characters) is sent escaped, or the call would fail.
        shown = "".join(c if " " <= c <= "~" else c.encode("unicode_escape").decode() for c in warning)
        context.set_trailing_metadata(((WARNING_KEY, shown),))


def _pod_identity(context: Context) -> tuple[int | None, str]:
    """The pod index and name our shim sends as metadata (v1.2's shim sends none)."""
    metadata = dict(context.invocation_metadata() or ())
    raw_index = metadata.get(POD_INDEX_KEY)
    index = int(raw_index) if isinstance(raw_index, str) and raw_index.isdigit() else None
    name = metadata.get(POD_NAME_KEY)
    return index, name if isinstance(name, str) else ""




def _exit_code(context: Context) -> int | None:
    raw = dict(context.invocation_metadata() or ()).get(EXIT_CODE_KEY)
    try:
        return int(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
