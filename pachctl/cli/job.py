"""Job commands: create-job, inspect-job, list-job, get-logs."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import output, render
from pachctl.cli.common import add, add_push_flags, commits, job_id, pushed
from pachctl.cli.manifests import read_source
from pachyderm_client import Client, InvalidArgumentError, UnimplementedError
from pachctl.manifest import read_job_request
from pachyderm_client.proto import pps_jobs_pb2, pps_pb2


def create_job(args: argparse.Namespace, client: Client) -> None:
    request = read_job_request(read_source(args.file))
    pushed(args, request.transform)
    print(client.create_job(request).id)


def inspect_job(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_job(job_id(client, args.job), block_state=args.block)
    def text() -> str:  # v1.2's view, then why the job failed (if it did)
        return render.job_info(info) + "".join(render.job_failure(f) for f in _failures(client, [info]))

    output.show(args, [info], text, single=True)


def _started(info: pps_pb2.JobInfo) -> tuple[int, int]:
    return info.started.seconds, info.started.nanos


def list_job(args: argparse.Namespace, client: Client) -> None:
    infos = sorted(client.list_job(args.pipeline, commits(args.commits)), key=_started, reverse=True)  # newest first
    output.show(args, infos, lambda: render.job_rows(infos) + render.job_failure_lines(_failures(client, infos)))


def _failures(client: Client, infos: list[pps_pb2.JobInfo]) -> list[pps_jobs_pb2.Failure]:
    """Why the failed ones among `infos` failed, from pachd's own job service (none from a pachd without it)."""
    failed = [info.job.id for info in infos if info.state == pps_pb2.JOB_FAILURE]
    if not failed:
        return []
    try:
        found = {f.job.id: f for f in client.get_failures(failed)}
    except UnimplementedError:  # a v1.2 pachd, without our job service
        return []
    return [found[job] for job in failed if job in found]


def get_logs(args: argparse.Namespace, client: Client) -> int:
    if (args.job is None) == (not args.pipeline):
        raise InvalidArgumentError("get-logs needs a job ID or --pipeline, not both",
                                   hint="pachctl get-logs <job-id>, or pachctl get-logs --pipeline <pipeline>")
    if args.pipeline:
        client.inspect_pipeline(args.pipeline)  # a pipeline that does not exist is an error, not "no jobs"
        jobs = sorted(client.list_job(args.pipeline), key=_started)  # oldest first
        ids = [info.job.id for info in jobs]
    else:
        ids = [job_id(client, args.job)]
    printed = 0
    failed = []
    for job in ids:
        lines = client.follow_logs(job) if args.follow else client.get_logs(job)
        prefix = f"{job} | ".encode() if args.pipeline else b""
        for line in lines:
            sys.stdout.buffer.write(prefix + line)
            printed += 1
            if args.follow:
                sys.stdout.flush()
        if args.follow and client.inspect_job(job).state == pps_pb2.JOB_FAILURE:
            failed.append(job)
    sys.stdout.flush()
    if not printed:
        print(f"pachctl: {_nothing(client, args.pipeline, ids)}", file=sys.stderr)
    for job in failed:
        print(f"pachctl: job {job} failed", file=sys.stderr)
    return 1 if failed else 0


def _nothing(client: Client, pipeline: str, ids: list[str]) -> str:
    """What to say when there were no lines at all."""
    if pipeline:
        return f"pipeline {pipeline} has no jobs" if not ids else f"the jobs of pipeline {pipeline} printed nothing"
    state = client.inspect_job(ids[0]).state
    if state in (pps_pb2.JOB_PULLING, pps_pb2.JOB_RUNNING):
        return f"job {ids[0]} has printed nothing yet (it is {render.job_states()[state]})"
    return f"job {ids[0]} printed nothing"


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
    logs = add(sub, "get-logs", get_logs, "Return logs from a job (or from every job of a pipeline).")
    logs.add_argument("job", metavar="job-id", nargs="?")
    logs.add_argument("-p", "--pipeline", default="",
                      help="the logs of all the pipeline's jobs, oldest first, each line after its job's ID")
    logs.add_argument("-f", "--follow", action="store_true",
                      help="keep printing lines as the pods print them until the job has ended; "
                      "exit 1 if it failed")
