"""Repo commands: create-repo, inspect-repo, list-repo, delete-repo."""

from __future__ import annotations

import argparse

from pachctl.cli import output, render
from pachctl.cli.common import add
from pachyderm_client import Client


def create_repo(args: argparse.Namespace, client: Client) -> None:
    client.create_repo(args.repo)


def inspect_repo(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_repo(args.repo)
    output.show(args, [info], lambda: render.repo_info(info), single=True)


def list_repo(args: argparse.Namespace, client: Client) -> None:
    infos = client.list_repo(args.provenance)
    output.show(args, infos, lambda: render.repo_rows(infos))


def delete_repo(args: argparse.Namespace, client: Client) -> None:
    client.delete_repo(args.repo, force=args.force)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add(sub, "create-repo", create_repo, "Create a new repo.").add_argument("repo")
    inspect = add(sub, "inspect-repo", inspect_repo, "Return info about a repo.")
    inspect.add_argument("repo")
    output.add_flags(inspect)
    listing = add(sub, "list-repo", list_repo, "Return all repos.")
    output.add_flags(listing)
    listing.add_argument("-p", "--provenance", action="append", default=[],
                         help="list only repos with the specified repos provenance")
    delete = add(sub, "delete-repo", delete_repo, "Delete a repo.")
    delete.add_argument("repo")
    delete.add_argument("-f", "--force", action="store_true",
                        help="remove the repo regardless of errors; use with care")
