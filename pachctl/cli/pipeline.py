"""Pipeline commands: create, update, inspect, list, delete, start, stop, run."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import render
from pachctl.cli.common import add
from pachctl.cli.job import transform_text
from pachctl.cli.manifests import read_source
from pachctl.client import Client
from pachctl.manifest import read_job_request, read_pipeline_requests
from protos import pps_pb2

STATES = {pps_pb2.PIPELINE_IDLE: "idle", pps_pb2.PIPELINE_RUNNING: "running", pps_pb2.PIPELINE_RESTARTING:
          "restarting", pps_pb2.PIPELINE_FAILURE: "failure", pps_pb2.PIPELINE_STOPPED: "stopped"}


def create_pipeline(args: argparse.Namespace, client: Client) -> None:
    warned: set[str] = set()
    for request in read_pipeline_requests(read_source(args.file)):
        _warn(client.create_pipeline(request), warned)


def update_pipeline(args: argparse.Namespace, client: Client) -> None:
    warned: set[str] = set()
    for request in read_pipeline_requests(read_source(args.file)):
        request.update = True
        request.no_archive = not args.archive
        _warn(client.create_pipeline(request), warned)


def _warn(warnings: list[str], warned: set[str]) -> None:
    """Prints each of pachd's warnings once per command, on stderr."""
    for warning in warnings:
        if warning not in warned:
            warned.add(warning)
            print(f"warning: {warning}", file=sys.stderr)


def inspect_pipeline(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_pipeline(args.pipeline)
    print(f"Name: {info.pipeline.name}")
    print(f"Created: {render.ago(info.created_at)}")
    print(f"State: {STATES.get(info.state, '-')}")
    spec = info.parallelism_spec
    print("ParallelismSpec: " + (f"coefficient {spec.coefficient:g}"
                                 if spec.strategy == pps_pb2.ParallelismSpec.COEFFICIENT else f"constant {spec.constant}"))
    print("Inputs:")
    render.table(["NAME", "PARTITION", "INCREMENTAL"],
                 [[i.repo.name, pps_pb2.Partition.Name(i.method.partition),
                   pps_pb2.Incremental.Name(i.method.incremental)] for i in info.inputs])
    print("Transform:")
    print(transform_text(info.transform))
    if info.recent_error:
        print(f"Recent Error: {info.recent_error}")
    print("Job Counts:")
    counts = dict(info.job_counts)
    states = [pps_pb2.JOB_PULLING, pps_pb2.JOB_RUNNING, pps_pb2.JOB_FAILURE, pps_pb2.JOB_SUCCESS]
    render.table([pps_pb2.JobState.Name(s)[4:] for s in states], [[str(counts.get(s, 0)) for s in states]])


def list_pipeline(args: argparse.Namespace, client: Client) -> None:
    rows = [[p.pipeline.name, ", ".join(i.repo.name for i in p.inputs), p.output_repo.name, STATES.get(p.state, "-")]
            for p in client.list_pipeline()]
    render.table(["NAME", "INPUT", "OUTPUT", "STATE"], rows)


def delete_pipeline(args: argparse.Namespace, client: Client) -> None:
    client.delete_pipeline(args.pipeline)


def start_pipeline(args: argparse.Namespace, client: Client) -> None:
    client.start_pipeline(args.pipeline)


def stop_pipeline(args: argparse.Namespace, client: Client) -> None:
    client.stop_pipeline(args.pipeline)


def run_pipeline(args: argparse.Namespace, client: Client) -> None:
    request = read_job_request(read_source(args.file)) if args.file else pps_pb2.CreateJobRequest()
    request.pipeline.name = args.pipeline
    print(client.create_job(request).id)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    create = add(sub, "create-pipeline", create_pipeline,
                 "Create new pipelines from a manifest (a file, a URL, or - for stdin).")
    create.add_argument("-f", "--file", default="-", help="the manifest: a local file, a URL, or - for stdin")
    update = add(sub, "update-pipeline", update_pipeline, "Update pipelines from a manifest, re-running them.")
    update.add_argument("-f", "--file", default="-", help="the manifest: a local file, a URL, or - for stdin")
    update.add_argument("--archive", default=True, type=lambda v: v.lower() not in ("false", "0", "no"),
                        help="archive the outputs made so far (default true; --archive=false keeps them)")
    for name, command, text in (("inspect-pipeline", inspect_pipeline, "Return info about a pipeline."),
                            ("delete-pipeline", delete_pipeline, "Delete a pipeline (its output repo stays)."),
                            ("start-pipeline", start_pipeline, "Restart a stopped pipeline."),
                            ("stop-pipeline", stop_pipeline, "Stop a running pipeline.")):
        add(sub, name, command, text).add_argument("pipeline", metavar="pipeline-name")
    add(sub, "list-pipeline", list_pipeline, "Return info about all pipelines.")
    once = add(sub, "run-pipeline", run_pipeline, "Run a pipeline once (e.g. one without inputs).")
    once.add_argument("pipeline", metavar="pipeline-name")
    once.add_argument("-f", "--file", default="", help="a job spec for the run: a local file, a URL, or -")
