"""Pipeline commands: create, update, inspect, list, delete, start, stop, run."""

from __future__ import annotations

import argparse
import shutil
import sys

from pachctl.cli import output, render
from pachctl.cli.common import add, add_push_flags, pushed
from pachctl.cli.manifests import read_source
from pachyderm_client import Client
from pachctl.manifest import read_job_request, read_pipeline_requests
from pachyderm_client.proto import pps_pb2

def _warn_if_missing_here(client: Client, request: pps_pb2.CreatePipelineRequest) -> None:
    """With pachd on this machine (a loopback address: the local executor's case), a command that is not
    found here will fail every job: say so at once. A client-side check; pachd is not asked."""
    host = client.address.rsplit(":", 1)[0].strip("[]")
    command = request.transform.cmd[0] if request.transform.cmd else ""
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0") or not command:
        return
    if shutil.which(command) is None:
        print(f"pachctl: warning: pipeline {request.pipeline.name}: {command!r} is not found on this machine; "
              "under the local executor its jobs will fail", file=sys.stderr)


def create_pipeline(args: argparse.Namespace, client: Client) -> None:
    warned: set[str] = set()
    for request in read_pipeline_requests(read_source(args.file)):
        pushed(args, request.transform)
        _warn_if_missing_here(client, request)
        _warn(client.create_pipeline(request), warned)


def update_pipeline(args: argparse.Namespace, client: Client) -> None:
    warned: set[str] = set()
    for request in read_pipeline_requests(read_source(args.file)):
        request.update = True
        request.no_archive = not args.archive
        pushed(args, request.transform)
        _warn_if_missing_here(client, request)
        _warn(client.create_pipeline(request), warned)


def _warn(warnings: list[str], warned: set[str]) -> None:
    """Prints each of pachd's warnings once per command, on stderr."""
    for warning in warnings:
        if warning not in warned:
            warned.add(warning)
            print(f"warning: {warning}", file=sys.stderr)


def inspect_pipeline(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_pipeline(args.pipeline)
    output.show(args, [info], lambda: render.pipeline_info(info), single=True)


def list_pipeline(args: argparse.Namespace, client: Client) -> None:
    infos = client.list_pipeline()
    output.show(args, infos, lambda: render.pipeline_rows(infos))


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
    add_push_flags(create)
    update = add(sub, "update-pipeline", update_pipeline, "Update pipelines from a manifest, re-running them.")
    update.add_argument("-f", "--file", default="-", help="the manifest: a local file, a URL, or - for stdin")
    add_push_flags(update)
    update.add_argument("--archive", default=True, type=lambda v: v.lower() not in ("false", "0", "no"),
                        help="archive the outputs made so far (default true; --archive=false keeps them)")
    for name, command, text in (("inspect-pipeline", inspect_pipeline, "Return info about a pipeline."),
                                ("delete-pipeline", delete_pipeline, "Delete a pipeline (its output repo stays)."),
                                ("start-pipeline", start_pipeline, "Restart a stopped pipeline."),
                                ("stop-pipeline", stop_pipeline, "Stop a running pipeline.")):
        parser = add(sub, name, command, text)
        parser.add_argument("pipeline", metavar="pipeline-name")
        if name == "inspect-pipeline":
            output.add_flags(parser)
    output.add_flags(add(sub, "list-pipeline", list_pipeline, "Return info about all pipelines."))
    once = add(sub, "run-pipeline", run_pipeline, "Run a pipeline once (e.g. one without inputs).")
    once.add_argument("pipeline", metavar="pipeline-name")
    once.add_argument("-f", "--file", default="", help="a job spec for the run: a local file, a URL, or -")
