"""Commit commands: start, fork, finish, inspect, list, squash, replay, flush, list-branch."""

from __future__ import annotations

import argparse
import sys

from pachctl.cli import output, render
from pachctl.cli.common import add, commit_id, commits
from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2


def start_commit(args: argparse.Namespace, client: Client) -> None:
    print(client.start_commit(args.repo, args.parent).id)


def fork_commit(args: argparse.Namespace, client: Client) -> None:
    print(client.fork_commit(args.repo, args.parent, args.branch).id)


def finish_commit(args: argparse.Namespace, client: Client) -> int:
    client.finish_commit((args.repo, args.commit), cancel=args.cancel)
    if not args.cancel and client.inspect_commit((args.repo, args.commit)).cancelled:
        print(f"commit {args.repo}/{args.commit} was cancelled: an ancestor of it was cancelled", file=sys.stderr)
        return 1
    return 0


def inspect_commit(args: argparse.Namespace, client: Client) -> None:
    info = client.inspect_commit((args.repo, commit_id(args.repo, args.commit)))
    output.show(args, [info], lambda: render.commit_info(info), single=True)


def print_commits(args: argparse.Namespace, infos: list[pfs_pb2.CommitInfo]) -> None:
    output.show(args, infos, lambda: render.commit_rows(infos))


def list_commit(args: argparse.Namespace, client: Client) -> None:
    status = pfs_pb2.ALL if args.all else pfs_pb2.NORMAL
    print_commits(args, client.list_commit(commits(args.commits), commits(args.provenance), status=status, block=args.block))


def squash_commit(args: argparse.Namespace, client: Client) -> None:
    client.squash_commit([(args.repo, c) for c in args.commits[:-1]], (args.repo, args.commits[-1]))


def replay_commit(args: argparse.Namespace, client: Client) -> None:
    for replayed in client.replay_commit([(args.repo, c) for c in args.commits[:-1]], args.commits[-1]):
        print(replayed.id)


def flush_commit(args: argparse.Namespace, client: Client) -> None:
    infos = client.flush_commit(commits(args.commits), args.repos)
    print_commits(args, infos)
    outputs = [i for i in infos if (i.commit.repo.name, i.commit.id) not in set(commits(args.commits))]
    if outputs:  # on stderr: stdout stays v1.2.3's table
        first = outputs[-1].commit
        print(f"read an output with: pachctl get-file {first.repo.name} {first.id} <path>", file=sys.stderr)


def list_branch(args: argparse.Namespace, client: Client) -> None:
    for branch in client.list_branch(args.repo, status=pfs_pb2.ALL if args.all else pfs_pb2.NORMAL):
        print(branch)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    start = add(sub, "start-commit", start_commit,
                "Start a new commit after parent-commit, or on a branch (made if it does not exist).")
    start.add_argument("repo")
    start.add_argument("parent", nargs="?", default="master", metavar="parent-commit | branch")
    fork = add(sub, "fork-commit", fork_commit, "Start a new commit with a given parent on a new branch.")
    for name in ("repo", "parent", "branch"):
        fork.add_argument(name)
    finish = add(sub, "finish-commit", finish_commit, "Finish a started commit.")
    finish.add_argument("repo")
    finish.add_argument("commit")
    finish.add_argument("-c", "--cancel", action="store_true", help="cancel the commit")
    inspect = add(sub, "inspect-commit", inspect_commit, "Return info about a commit.")
    inspect.add_argument("repo")
    inspect.add_argument("commit")
    output.add_flags(inspect)
    listing = add(sub, "list-commit", list_commit,
                  "Return all commits on a set of repos (repo, or repo/commit for the commits after it).")
    listing.add_argument("commits", nargs="*", metavar="repo[/commit]")
    listing.add_argument("-a", "--all", action="store_true", help="list all commits including cancelled and archived ones")
    listing.add_argument("-b", "--block", action="store_true", help="block until there are new commits since the from commits")
    listing.add_argument("-p", "--provenance", action="append", default=[], metavar="repo/commit",
                         help="list only commits with the specified commits as provenance")
    output.add_flags(listing)
    squash = add(sub, "squash-commit", squash_commit, "Squash a number of commits into a single commit.")
    squash.add_argument("repo")
    squash.add_argument("commits", nargs="+", metavar="commits... to-commit")
    replay = add(sub, "replay-commit", replay_commit, "Replay a number of commits onto a branch.")
    replay.add_argument("repo")
    replay.add_argument("commits", nargs="+", metavar="commits... branch")
    flush = add(sub, "flush-commit", flush_commit,
                "Wait for all commits caused by the specified commits to finish and return them.")
    flush.add_argument("commits", nargs="+", metavar="repo/commit")
    flush.add_argument("-r", "--repos", action="append", default=[],
                       help="wait only for commits leading to a specific set of repos")
    output.add_flags(flush)
    branches = add(sub, "list-branch", list_branch, "Return all branches on a repo.")
    branches.add_argument("repo")
    branches.add_argument("-a", "--all", action="store_true",
                          help="list all branches including cancelled and archived ones")
