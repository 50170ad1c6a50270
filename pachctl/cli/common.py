"""What several command modules share: argument helpers and the command signature."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pachctl.client import Client
from protos import pfs_pb2

Command = Callable[[argparse.Namespace, Client], int | None]


def add(subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
        name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(run=run)
    add_global_flags(parser, default=argparse.SUPPRESS)  # accepted after the command too
    return parser


def add_global_flags(parser: argparse.ArgumentParser, default: object = False) -> None:
    """-v and -q, on pachctl itself and (not overriding it unless given) on each command."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default,
                        help="output verbose logs and tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars")
    parser.add_argument("--address", default=None if default is False else default, metavar="HOST:PORT",
                        help="the pachd to talk to (over ADDRESS and the config file)")


def add_shard_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--file-shard", type=int, default=0, help="file shard to read")
    parser.add_argument("-m", "--file-modulus", type=int, default=1, help="modulus of file shard")
    parser.add_argument("-b", "--block-shard", type=int, default=0, help="block shard to read")
    parser.add_argument("-n", "--block-modulus", type=int, default=1, help="modulus of block shard")


def add_diff_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--from", dest="from_commit", default="",
                        help="only consider data written since this commit")
    parser.add_argument("--full-file", action="store_true",
                        help="if there has been data since the from commit return the full file")


def shard(args: argparse.Namespace) -> pfs_pb2.Shard | None:
    if args.file_modulus <= 1 and args.block_modulus <= 1:
        return None
    return pfs_pb2.Shard(file_number=args.file_shard, file_modulus=max(args.file_modulus, 0),
                         block_number=args.block_shard, block_modulus=max(args.block_modulus, 0))


def commits(texts: list[str]) -> list[tuple[str, str]]:
    """"repo" or "repo/commit-id" arguments as (repo, id) pairs."""
    out = []
    for text in texts:
        repo, _, commit_id = text.partition("/")
        out.append((repo, commit_id))
    return out


def job_id(client: Client, given: str) -> str:
    """The job ID `given` names: itself if such a job exists, else the one job whose ID starts with it.

    Prefixes are resolved here, in pachctl, with one ListJob; pachd sees only whole IDs."""
    from pachctl.client import InvalidArgumentError, NotFoundError

    try:
        return client.inspect_job(given).job.id
    except NotFoundError:
        matches = sorted({info.job.id for info in client.list_job() if info.job.id.startswith(given)})
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise
        shown = ", ".join(matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise InvalidArgumentError(f"job ID prefix {given!r} is ambiguous: {shown}",
                                   hint="give more of the ID") from None



def commit_id(repo: str, given: str) -> str:
    """The commit ID, also when given as list-commit and flush-commit print it (`repo/branch/N`)."""
    return given[len(repo) + 1:] if given.startswith(f"{repo}/") and given.count("/") >= 2 else given
