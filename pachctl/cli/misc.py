"""version, delete-all and archive-all."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import render
from pachctl.cli.common import add
from pachctl.client import Client, PachydermError
from pachd import VERSION, VERSION_ADDITIONAL


def _pretty(major: int, minor: int, micro: int, additional: str) -> str:
    return f"{major}.{minor}.{micro}" + (f"-{additional}" if additional else "")


def version(args: argparse.Namespace, client: Client) -> None:
    rows = [["pachctl", _pretty(*VERSION, VERSION_ADDITIONAL)]]
    try:
        server = client.get_version()
        rows.append(["pachd", _pretty(server.major, server.minor, server.micro, server.additional)])
    except PachydermError as err:
        rows.append(["pachd", f"(version unknown) : error connecting to pachd at {client.address}: {err.message}"])
    render.table(["COMPONENT", "VERSION"], rows)


def delete_all(args: argparse.Namespace, client: Client) -> None:
    if not args.yes:
        print("Are you sure you want to delete all repos, commits, files, pipelines and jobs? yN")
        answer = sys.stdin.readline()
        if not answer.strip().lower().startswith("y"):
            return
    client.delete_all()


def archive_all(args: argparse.Namespace, client: Client) -> None:
    client.archive_all()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add(sub, "version", version, "Return version information.")
    delete = add(sub, "delete-all", delete_all, "Delete all repos, commits, files, pipelines and jobs.")
    delete.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    add(sub, "archive-all", archive_all, "Archive all commits in all repos.")
