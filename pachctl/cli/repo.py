"""Repo commands: create-repo, inspect-repo, list-repo, delete-repo."""

from __future__ import annotations

import argparse

from pachctl.cli import render
from pachctl.cli.common import add
from pachctl.client import Client


def create_repo(args: argparse.Namespace, client: Client) -> None:
    client.create_repo(args.repo)


def inspect_repo(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_repo(args.repo)
    print(f"Name: {info.repo.name}")
    print(f"Created: {render.ago(info.created)}")
    print(f"Size: {render.size(info.size_bytes)}")
    if info.provenance:
        print("Provenance: " + " ".join(r.name for r in info.provenance))


def list_repo(args: argparse.Namespace, client: Client) -> None:
    rows = [[r.repo.name, render.ago(r.created), render.size(r.size_bytes)] for r in client.list_repo(args.provenance)]
    render.table(["NAME", "CREATED", "SIZE"], rows)


def delete_repo(args: argparse.Namespace, client: Client) -> None:
    client.delete_repo(args.repo, force=args.force)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    add(sub, "create-repo", create_repo, "Create a new repo.").add_argument("repo")
    add(sub, "inspect-repo", inspect_repo, "Return info about a repo.").add_argument("repo")
    listing = add(sub, "list-repo", list_repo, "Return all repos.")
    listing.add_argument("-p", "--provenance", action="append", default=[],
                         help="list only repos with the specified repos provenance")
    delete = add(sub, "delete-repo", delete_repo, "Delete a repo.")
    delete.add_argument("repo")
    delete.add_argument("-f", "--force", action="store_true",
                        help="remove the repo regardless of errors; use with care")
