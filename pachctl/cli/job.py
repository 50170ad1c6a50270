"""Job commands: create-job, inspect-job, list-job, get-logs."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import render
from pachctl.cli.common import add, add_push_flags, commits, pushed
from pachctl.cli.manifests import read_source
from pachctl.client import Client
from pachctl.manifest import read_job_request
from protos import pps_pb2

STATES = {pps_pb2.JOB_PULLING: "pulling", pps_pb2.JOB_RUNNING: "running", pps_pb2.JOB_FAILURE: "failure",
          pps_pb2.JOB_SUCCESS: "success", pps_pb2.JOB_EMPTY: "empty"}


def create_job(args: argparse.Namespace, client: Client) -> None:
    request = read_job_request(read_source(args.file))
    pushed(args, request.transform)
    print(client.create_job(request).id)


def inspect_job(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_job(args.job, block_state=args.block)
    print(f"ID: {info.job.id}")
    if info.HasField("parent_job"):
        print(f"Parent: {info.parent_job.id}")
    if info.HasField("started"):
        print(f"Started: {render.ago(info.started)}")
    if info.HasField("finished") and info.HasField("started"):
        print(f"Duration: {render.between(info.started, info.finished)}")
    print(f"State: {STATES.get(info.state, '-')}")
    print(f"ParallelismSpec: {_parallelism(info.parallelism_spec)}")
    if info.HasField("output_commit"):
        print(f"Output: {info.output_commit.repo.name}/{info.output_commit.id}")
    print("Inputs:")
    render.table(["NAME", "COMMIT", "PARTITION", "INCREMENTAL"],
                 [[i.commit.repo.name, i.commit.id, pps_pb2.Partition.Name(i.method.partition),
                   pps_pb2.Incremental.Name(i.method.incremental)] for i in info.inputs])
    print("Transform:")
    print(transform_text(info.transform))


def _parallelism(spec: pps_pb2.ParallelismSpec) -> str:
    if spec.strategy == pps_pb2.ParallelismSpec.COEFFICIENT:
        return f"coefficient {spec.coefficient:g}"
    return f"constant {spec.constant}"


def transform_text(transform: pps_pb2.Transform) -> str:
    lines = []
    if transform.image:
        lines.append(f"  image: {transform.image}")
    lines.append(f"  cmd: {' '.join(transform.cmd)}")
    lines += [f"  stdin: {line}" for line in transform.stdin]
    lines += [f"  env: {name}={value}" for name, value in sorted(transform.env.items())]
    lines += [f"  secret: {s.name} at {s.mount_path}" for s in transform.secrets]
    if transform.accept_return_code:
        lines.append("  accept_return_code: " + ", ".join(str(c) for c in transform.accept_return_code))
    return "\n".join(lines)


def list_job(args: argparse.Namespace, client: Client) -> None:
    rows = []
    for info in client.list_job(args.pipeline, commits(args.commits)):
        output = f"{info.output_commit.repo.name}/{info.output_commit.id}" if info.HasField("output_commit") else "-"
        started = render.ago(info.started) if info.HasField("started") else "-"
        took = render.between(info.started, info.finished) if info.HasField("finished") and info.HasField(
            "started") else "-"
        rows.append([info.job.id, output, started, took, STATES.get(info.state, "-")])
    render.table(["ID", "OUTPUT", "STARTED", "DURATION", "STATE"], rows)


def get_logs(args: argparse.Namespace, client: Client) -> None:
    for line in client.get_logs(args.job):
        sys.stdout.buffer.write(line)
    sys.stdout.flush()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    create = add(sub, "create-job", create_job, "Create a new job from a spec (a file, a URL, or - for stdin).")
    create.add_argument("-f", "--file", default="-", help="the job spec: a local file, a URL, or - for stdin")
    add_push_flags(create)
    inspect = add(sub, "inspect-job", inspect_job, "Return info about a job.")
    inspect.add_argument("job", metavar="job-id")
    inspect.add_argument("-b", "--block", action="store_true", help="block until the job has either succeeded or failed")
    listing = add(sub, "list-job", list_job, "Return info about jobs (of one pipeline, or with these input commits).")
    listing.add_argument("commits", nargs="*", metavar="repo/commit")
    listing.add_argument("-p", "--pipeline", default="", help="limit to jobs made by pipeline")
    logs = add(sub, "get-logs", get_logs, "Return logs from a job.")
    logs.add_argument("job", metavar="job-id")
