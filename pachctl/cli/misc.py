"""version, delete-all and archive-all."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import render
from pachctl.cli.common import add
from pachyderm_client import Client, PachydermError
from pachd import VERSION, VERSION_ADDITIONAL


def _pretty(major: int, minor: int, micro: int, additional: str) -> str:
    return f"{major}.{minor}.{micro}" + (f"-{additional}" if additional else "")


def version(args: argparse.Namespace, client: Client) -> int:
    """v1.2.3's table (pachctl shows the v1.2 version it speaks); -v adds this build's name.

    Exits 1 when pachd cannot be reached."""
    ours = _pretty(*VERSION, VERSION_ADDITIONAL if args.verbose else "")
    try:
        server = client.get_version()
    except PachydermError as err:
        sys.stdout.write(render.version_rows([["pachctl", ours]]))
        sys.stdout.flush()
        print(f"pachd: (version unknown): {err.message}", file=sys.stderr)
        if err.hint:
            print(f"hint: {err.hint}", file=sys.stderr)
        return 1
    sys.stdout.write(render.version_rows(
        [["pachctl", ours], ["pachd", _pretty(server.major, server.minor, server.micro, server.additional)]]))
    return 0


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
