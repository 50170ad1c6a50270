"""Job commands: create-job, inspect-job, list-job, get-logs."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import output, render
from pachctl.cli.common import add, add_push_flags, commits, job_id, pushed
from pachctl.cli.manifests import read_source
from pachyderm_client import Client
from pachctl.manifest import read_job_request
from pachyderm_client.proto import pps_pb2


def create_job(args: argparse.Namespace, client: Client) -> None:
    request = read_job_request(read_source(args.file))
    pushed(args, request.transform)
    print(client.create_job(request).id)


def inspect_job(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_job(job_id(client, args.job), block_state=args.block)
    output.show(args, [info], lambda: render.job_info(info), single=True)


def _started(info: pps_pb2.JobInfo) -> tuple[int, int]:
    return info.started.seconds, info.started.nanos


def list_job(args: argparse.Namespace, client: Client) -> None:
    infos = sorted(client.list_job(args.pipeline, commits(args.commits)), key=_started, reverse=True)  # newest first
    output.show(args, infos, lambda: render.job_rows(infos))


def get_logs(args: argparse.Namespace, client: Client) -> None:
    for line in client.get_logs(job_id(client, args.job)):
        sys.stdout.buffer.write(line)
    sys.stdout.flush()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    create = add(sub, "create-job", create_job, "Create a new job from a spec (a file, a URL, or - for stdin).")
    create.add_argument("-f", "--file", default="-", help="the job spec: a local file, a URL, or - for stdin")
    add_push_flags(create)
    inspect = add(sub, "inspect-job", inspect_job, "Return info about a job.")
    inspect.add_argument("job", metavar="job-id")
    inspect.add_argument("-b", "--block", action="store_true", help="block until the job has either succeeded or failed")
    output.add_flags(inspect)
    listing = add(sub, "list-job", list_job, "Return info about jobs (of one pipeline, or with these input commits).")
    listing.add_argument("commits", nargs="*", metavar="repo/commit")
    listing.add_argument("-p", "--pipeline", default="", help="limit to jobs made by pipeline")
    output.add_flags(listing)
    logs = add(sub, "get-logs", get_logs, "Return logs from a job.")
    logs.add_argument("job", metavar="job-id")
