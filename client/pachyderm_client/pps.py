"""PpsClient: pipelines and jobs (pachyderm.pps.API), as pachctl's verbs."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, overload

from google.protobuf import empty_pb2

from pachyderm_client._base import Connection, resumable, stream, translated
from pachyderm_client._lazy import lazy_module
from pachyderm_client.pfs import CommitLike, as_commits
from pachyderm_client.proto import pfs_pb2

if TYPE_CHECKING:
    from pachyderm_client.proto import pps_pb2, pps_pb2_grpc
else:  # loaded by the first PPS call (see _lazy.py)
    pps_pb2 = lazy_module("pachyderm_client.proto.pps_pb2")
    pps_pb2_grpc = lazy_module("pachyderm_client.proto.pps_pb2_grpc")


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


def pipeline_input(repo: str, method_alias: str = "map", run_empty: bool = False) -> pps_pb2.PipelineInput:
    """A pipeline's input: the repo, read with the method of the alias (see `method`)."""
    return pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=repo), method=method(method_alias), run_empty=run_empty)


def pipeline_request(
    name: str, *, transform: pps_pb2.Transform | None = None, image: str = "", cmd: Sequence[str] = (),
    stdin: Sequence[str] = (), env: Mapping[str, str] | None = None,
    inputs: Sequence[str | pps_pb2.PipelineInput] = (), parallelism: int | pps_pb2.ParallelismSpec | None = None,
    update: bool = False, no_archive: bool = False,
) -> pps_pb2.CreatePipelineRequest:
    """The CreatePipelineRequest for these keyword arguments: a transform, or image/cmd/stdin/env
    to make one; inputs as repo names (method "map") or PipelineInputs (see `pipeline_input`);
    parallelism as a number of pods or a ParallelismSpec."""
    if transform is not None and (image or cmd or stdin or env):
        raise TypeError("give either transform or image/cmd/stdin/env, not both")
    if transform is None:
        transform = pps_pb2.Transform(image=image, cmd=cmd, stdin=stdin, env=env)
    if isinstance(parallelism, int):
        parallelism = pps_pb2.ParallelismSpec(strategy=pps_pb2.ParallelismSpec.CONSTANT, constant=parallelism)
    return pps_pb2.CreatePipelineRequest(
        pipeline=pps_pb2.Pipeline(name=name), transform=transform, parallelism_spec=parallelism,
        inputs=[pipeline_input(i) if isinstance(i, str) else i for i in inputs], update=update, no_archive=no_archive,
    )


WARNING_KEY = "pach-warning"
"""Trailing metadata pachd adds to a call that succeeded but deserves a warning."""


class PpsClient(Connection):
    """Pipelines and jobs: pachd's pachyderm.pps.API."""

    @functools.cached_property
    def _pps(self) -> pps_pb2_grpc.APIStub:
        return pps_pb2_grpc.APIStub(self._channel)

    @translated
    def create_job(self, request: pps_pb2.CreateJobRequest) -> pps_pb2.Job:
        """Creates a job from the full request; returns it."""
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
    def list_job(self, pipeline: str = "", input_commits: CommitLike | Sequence[CommitLike] = ()) -> list[pps_pb2.JobInfo]:
        """Jobs, newest first: all, or the pipeline's, or those that read all of `input_commits`."""
        request = pps_pb2.ListJobRequest(
            pipeline=pps_pb2.Pipeline(name=pipeline) if pipeline else None, input_commit=as_commits(input_commits))
        return list(self._pps.ListJob(request).job_info)

    def get_logs(self, job_id: str) -> Iterator[bytes]:
        """The job's pod output, line by line, each as b"<pod index> | <line>\\n"."""
        responses = self._pps.GetLogs(pps_pb2.GetLogsRequest(job=pps_pb2.Job(id=job_id)))
        for value in stream(responses):
            yield value.value

    @overload
    def create_pipeline(self, pipeline: pps_pb2.CreatePipelineRequest, /) -> list[str]: ...

    @overload
    def create_pipeline(
        self, pipeline: str, /, *, transform: pps_pb2.Transform | None = None, image: str = "",
        cmd: Sequence[str] = (), stdin: Sequence[str] = (), env: Mapping[str, str] | None = None,
        inputs: Sequence[str | pps_pb2.PipelineInput] = (), parallelism: int | pps_pb2.ParallelismSpec | None = None,
        update: bool = False, no_archive: bool = False,
    ) -> list[str]: ...

    @translated
    def create_pipeline(self, pipeline: str | pps_pb2.CreatePipelineRequest, /, **fields: object) -> list[str]:
        """Creates (or, with update=True, updates) the pipeline; returns pachd's warnings about it.

        Takes a full CreatePipelineRequest, or the pipeline's name and keyword arguments
        (see `pipeline_request`):

            client.create_pipeline("copy", image="ubuntu:24.04", cmd=["sh"],
                                   stdin=["cp -r /pfs/data/. /pfs/out/"], inputs=["data"], parallelism=2)
        """
        if isinstance(pipeline, pps_pb2.CreatePipelineRequest):
            if fields:
                raise TypeError("create_pipeline takes a request or keyword arguments, not both")
            request = pipeline
        else:
            request = pipeline_request(pipeline, **fields)  # type: ignore[arg-type]
        _, call = self._pps.CreatePipeline.with_call(request)
        return [str(v) for k, v in (call.trailing_metadata() or ()) if k == WARNING_KEY]

    @translated
    def inspect_pipeline(self, name: str) -> pps_pb2.PipelineInfo:
        """The pipeline's PipelineInfo (state, transform, inputs)."""
        return self._pps.InspectPipeline(pps_pb2.InspectPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def list_pipeline(self) -> list[pps_pb2.PipelineInfo]:
        """Every pipeline."""
        return list(self._pps.ListPipeline(pps_pb2.ListPipelineRequest()).pipeline_info)

    @translated
    def delete_pipeline(self, name: str) -> None:
        """Deletes the pipeline (its output repo stays)."""
        self._pps.DeletePipeline(pps_pb2.DeletePipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def start_pipeline(self, name: str) -> None:
        """Restarts a stopped pipeline: it processes new commits again."""
        self._pps.StartPipeline(pps_pb2.StartPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def stop_pipeline(self, name: str) -> None:
        """Stops the pipeline: it processes no new commits until started."""
        self._pps.StopPipeline(pps_pb2.StopPipelineRequest(pipeline=pps_pb2.Pipeline(name=name)))

    @translated
    def delete_all_pipelines(self) -> None:
        """Deletes every pipeline and job."""
        self._pps.DeleteAll(empty_pb2.Empty())
