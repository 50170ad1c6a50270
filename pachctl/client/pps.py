"""PpsClient: pipelines and jobs (pachyderm.pps.API), as pachctl's verbs."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from google.protobuf import empty_pb2

from pachctl.client._base import Connection, resumable, stream, translated
from pachctl.client.pfs import commit
from pachctl.client._lazy import lazy_module

if TYPE_CHECKING:
    from protos import pps_pb2, pps_pb2_grpc
else:  # loaded by the first PPS call (see _lazy.py)
    pps_pb2, pps_pb2_grpc = lazy_module("protos.pps_pb2"), lazy_module("protos.pps_pb2_grpc")


METHOD_ALIASES: Mapping[str, tuple[str, str]] = {
    "map": ("BLOCK", "DIFF"),
    "reduce": ("FILE", "NONE"),
    "incremental_reduce": ("FILE", "DIFF"),
    "global": ("REPO", "NONE"),
}
"""The input method aliases of v1.2 manifests (partition, incremental); "map" is the default."""


def method(alias: str = "map") -> pps_pb2.Method:
    """The Method for an alias (map, reduce, incremental_reduce, global); KeyError if unknown."""
    partition, incremental = METHOD_ALIASES[alias]
    return pps_pb2.Method(partition=pps_pb2.Partition.Value(partition),
                          incremental=pps_pb2.Incremental.Value(incremental))


WARNING_KEY = "pach-warning"
"""Trailing metadata pachd adds to a call that succeeded but deserves a warning."""


class PpsClient(Connection):
    @functools.cached_property
    def _pps(self) -> pps_pb2_grpc.APIStub:
        return pps_pb2_grpc.APIStub(self._channel)

    @translated
    def create_job(self, request: pps_pb2.CreateJobRequest) -> pps_pb2.Job:
        return self._pps.CreateJob(request)

    @translated
    def run_pipeline(self, pipeline: str, inputs: Sequence[pps_pb2.JobInput] = ()) -> pps_pb2.Job:
        """A job of the pipeline's transform, now (for pipelines without inputs)."""
        return self._pps.CreateJob(pps_pb2.CreateJobRequest(pipeline=pps_pb2.Pipeline(name=pipeline), inputs=inputs))

    @resumable
    def inspect_job(self, job_id: str, block_state: bool = False, timeout: float | None = None) -> pps_pb2.JobInfo:
        """The job; with block_state, once it has succeeded or failed."""
        request = pps_pb2.InspectJobRequest(job=pps_pb2.Job(id=job_id), block_state=block_state)
        return self._pps.InspectJob(request, timeout=timeout)

    @translated
    def list_job(self, pipeline: str = "", input_commits: Sequence[tuple[str, str]] = ()) -> list[pps_pb2.JobInfo]:
        request = pps_pb2.ListJobRequest(
            pipeline=pps_pb2.Pipeline(name=pipeline) if pipeline else None,
            input_commit=[commit(r, c) for r, c in input_commits],
        )
        return list(self._pps.ListJob(request).job_info)

    def get_logs(self, job_id: str) -> Iterator[bytes]:
        """The job's pod output, line by line, each as b"<pod index> | <line>\\n"."""
        responses = self._pps.GetLogs(pps_pb2.GetLogsRequest(job=pps_pb2.Job(id=job_id)))
        for value in stream(responses):
            yield value.value

    @translated
    def create_pipeline(self, request: pps_pb2.CreatePipelineRequest) -> list[str]:
        """Creates (or updates) the pipeline; returns pachd's warnings about it, if any."""
        _, call = self._pps.CreatePipeline.with_call(request)
        return [str(v) for k, v in (call.trailing_metadata() or ()) if k == WARNING_KEY]

    @translated
    def inspect_pipeline(self, name: str) -> pps_pb2.PipelineInfo:
        return self._pps.InspectPipeline(pps_pb2.InspectPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def list_pipeline(self) -> list[pps_pb2.PipelineInfo]:
        return list(self._pps.ListPipeline(pps_pb2.ListPipelineRequest()).pipeline_info)

    @translated
    def delete_pipeline(self, name: str) -> None:
        self._pps.DeletePipeline(pps_pb2.DeletePipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def start_pipeline(self, name: str) -> None:
        self._pps.StartPipeline(pps_pb2.StartPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def stop_pipeline(self, name: str) -> None:
        self._pps.StopPipeline(pps_pb2.StopPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def delete_all_pipelines(self) -> None:
        self._pps.DeleteAll(empty_pb2.Empty())
