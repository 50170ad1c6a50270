"""Translation between PPS protobuf messages and domain values."""

from __future__ import annotations

from collections.abc import Iterable

from pachd import validate
from pachd.errors import InvalidManifest, TooLarge
from pachd.pfs.messages import commit, commit_ref, timestamp
from pachd.pps.jobs import Claim
from pachd.pps.sharding import MAX_PODS
from pachd.pps.pipelines import PipelineInfo
from pachd.pps.secrets import shown_env
from pachd.pps.specs import (
    MAP,
    Incremental,
    JobInput,
    JobRecord,
    Method,
    Parallelism,
    Partition,
    PipelineInput,
    PipelineRecord,
    Secret,
    Strategy,
    Transform,
)
from pachyderm_client.proto import fuse_pb2, pfs_pb2, pps_internal_pb2, pps_pb2

# -- reading requests --------------------------------------------------------


MAX_TRANSFORM_BYTES = 256 * 1024
"""The largest transform (cmd, stdin, env, ...) a pipeline or job may have; it is stored in every job."""


def transform(message: pps_pb2.Transform) -> Transform:
    size = message.ByteSize()
    if size > MAX_TRANSFORM_BYTES:
        raise TooLarge(f"the transform is {size} bytes; the limit is {MAX_TRANSFORM_BYTES}: put long scripts "
                       "in the image (or in a repo given as an input) and run them from cmd")
    return Transform(
        image=message.image,
        cmd=tuple(message.cmd),
        env=tuple(sorted(message.env.items())),
        secrets=tuple(Secret(s.name, s.mount_path) for s in message.secrets),
        stdin=tuple(message.stdin),
        accept_return_code=tuple(message.accept_return_code),
        debug=message.debug,
    )


def method(message: pps_pb2.Method, present: bool) -> Method:
    """An input's method; absent means map (BLOCK + DIFF), as in v1.2."""
    if not present:
        return MAP
    try:
        return Method(Partition(message.partition), Incremental(message.incremental))
    except ValueError as err:
        raise InvalidManifest(f"unknown partition or incremental value in method: {err}") from err


def parallelism(message: pps_pb2.ParallelismSpec) -> Parallelism:
    try:
        strategy = Strategy(message.strategy)
    except ValueError as err:
        raise InvalidManifest(
            f"unknown parallelism_spec strategy {message.strategy}; use CONSTANT or COEFFICIENT"
        ) from err
    if strategy is Strategy.COEFFICIENT and not 0 < message.coefficient <= MAX_PODS:  # NaN fails too
        raise InvalidManifest(
            f"a COEFFICIENT parallelism_spec needs a coefficient above 0 and at most {MAX_PODS}, "
            f"not {message.coefficient}"
        )
    if message.constant > MAX_PODS:
        raise InvalidManifest(f"parallelism_spec asks for {message.constant} pods; the limit is {MAX_PODS}")
    return Parallelism(strategy, message.constant, message.coefficient)


def pipeline_inputs(messages: Iterable[pps_pb2.PipelineInput]) -> list[PipelineInput]:
    return [
        PipelineInput(validate.repo_name(i.repo.name), method(i.method, i.HasField("method")), i.run_empty)
        for i in messages
    ]


def job_inputs(messages: Iterable[pps_pb2.JobInput]) -> list[JobInput]:
    inputs = []
    for i in messages:
        repo, commit_id = commit_ref(i.commit)
        inputs.append(JobInput(repo, commit_id, method(i.method, i.HasField("method")), i.run_empty))
    return inputs


def pipeline_name(message: pps_pb2.Pipeline) -> str:
    return validate.repo_name(message.name, what="pipeline")


# -- building replies ----------------------------------------------------------


def transform_message(value: Transform) -> pps_pb2.Transform:
    """A transform as replies show it: secret env values are replaced (see secrets.py)."""
    return pps_pb2.Transform(
        image=value.image, cmd=value.cmd, env=shown_env(value),
        secrets=[pps_pb2.Secret(name=s.name, mount_path=s.mount_path) for s in value.secrets],
        stdin=value.stdin, accept_return_code=value.accept_return_code, debug=value.debug,
    )


def method_message(value: Method) -> pps_pb2.Method:
    return pps_pb2.Method(partition=value.partition.value, incremental=value.incremental.value)  # type: ignore[arg-type]


def parallelism_message(value: Parallelism) -> pps_pb2.ParallelismSpec:
    return pps_pb2.ParallelismSpec(strategy=value.strategy.value, constant=value.constant,  # type: ignore[arg-type]
                                   coefficient=value.coefficient)


def job_info(job: JobRecord) -> pps_pb2.JobInfo:
    return pps_pb2.JobInfo(
        job=pps_pb2.Job(id=job.id),
        transform=transform_message(job.transform),
        pipeline=pps_pb2.Pipeline(name=job.pipeline) if job.pipeline else None,
        parallelism_spec=pps_pb2.ParallelismSpec(constant=job.pod_count) if job.pods
        else parallelism_message(job.parallelism),
        inputs=[pps_pb2.JobInput(commit=commit(i.repo, i.commit), method=method_message(i.method),
                                 run_empty=i.run_empty) for i in job.inputs],
        parent_job=pps_pb2.Job(id=job.parent) if job.parent else None,
        started=timestamp(job.started),
        finished=timestamp(job.finished),
        output_commit=commit(job.output_repo, job.output_commit) if job.output_commit else None,
        state=job.state.value,  # type: ignore[arg-type]
        pod_commits={index: pod.commit for index, pod in enumerate(job.pods) if pod.commit},
    )


def pipeline_info(info: PipelineInfo) -> pps_pb2.PipelineInfo:
    record: PipelineRecord = info.record
    return pps_pb2.PipelineInfo(
        pipeline=pps_pb2.Pipeline(name=record.name),
        transform=transform_message(record.transform),
        parallelism_spec=parallelism_message(record.parallelism),
        inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=i.repo), method=method_message(i.method),
                                      run_empty=i.run_empty) for i in record.inputs],
        output_repo=pfs_pb2.Repo(name=record.name),
        created_at=timestamp(record.created),
        state=record.state.value,  # type: ignore[arg-type]
        recent_error=record.recent_error,
        job_counts={state.value: count for state, count in info.job_counts.items()},
    )


def start_job_response(claim: Claim) -> pps_internal_pb2.StartJobResponse:
    mounts = []
    for mount in claim.mounts:
        diff = None
        if mount.from_commit:
            diff = pfs_pb2.DiffMethod(from_commit=commit(mount.repo, mount.from_commit), full_file=mount.full_file)
        shard = mount.shard
        mounts.append(fuse_pb2.CommitMount(
            commit=commit(mount.repo, mount.commit), diff_method=diff, full_file=mount.full_file, alias=mount.alias,
            shard=pfs_pb2.Shard(file_number=shard.file_number, file_modulus=shard.file_modulus,
                                block_number=shard.block_number, block_modulus=shard.block_modulus),
        ))
    return pps_internal_pb2.StartJobResponse(
        transform=transform_message(claim.job.transform), commit_mounts=mounts, pod_index=claim.index
    )
