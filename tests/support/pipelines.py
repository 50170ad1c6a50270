"""Building pipeline requests in tests, the way a manifest would."""

from __future__ import annotations

from collections.abc import Sequence

from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.wait import wait_until

MAP = pps_pb2.Method(partition=pps_pb2.BLOCK, incremental=pps_pb2.DIFF)
REDUCE = pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.NONE)
INCREMENTAL_REDUCE = pps_pb2.Method(partition=pps_pb2.FILE, incremental=pps_pb2.DIFF)
GLOBAL = pps_pb2.Method(partition=pps_pb2.REPO, incremental=pps_pb2.NONE)


def pipeline(
    name: str, script: str, inputs: Sequence[tuple[str, pps_pb2.Method]], *, parallelism: int = 1,
    accept: Sequence[int] = (), env: dict[str, str] | None = None,
) -> pps_pb2.CreatePipelineRequest:
    """A pipeline running `script` with sh."""
    return pps_pb2.CreatePipelineRequest(
        pipeline=pps_pb2.Pipeline(name=name),
        transform=pps_pb2.Transform(cmd=["sh"], stdin=script.strip().splitlines(), accept_return_code=accept,
                                    env=env or {}),
        parallelism_spec=pps_pb2.ParallelismSpec(constant=parallelism),
        inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=repo), method=method) for repo, method in inputs],
    )


def only_job(client: Client, pipeline_name: str, timeout: float = 90) -> pps_pb2.JobInfo:
    """The pipeline's one job, once it has ended."""
    wait_until(lambda: len(client.list_job(pipeline_name)) == 1, what=f"a job of {pipeline_name}")
    return client.inspect_job(client.list_job(pipeline_name)[0].job.id, block_state=True, timeout=timeout)
