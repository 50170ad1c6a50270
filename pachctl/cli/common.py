"""What several command modules share: argument helpers and the command signature."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from pachyderm_client import Client
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pfs_pb2, pps_pb2
else:  # loaded by the commands that use them (see pachctl/client/_lazy.py)
    pfs_pb2, pps_pb2 = lazy_module("pachyderm_client.proto.pfs_pb2"), lazy_module("pachyderm_client.proto.pps_pb2")

Command = Callable[[argparse.Namespace, Client], int | None]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "start-commit": ("# a new commit on branch bar of repo foo", "pachctl start-commit foo bar",
                     "# a new commit whose parent is master/3", "pachctl start-commit foo master/3"),
    "fork-commit": ("# a new branch bar of repo test, starting from foo/2", "pachctl fork-commit test foo/2 bar"),
    "list-commit": ("# the commits of repos foo and bar", "pachctl list-commit foo bar",
                    "# those after foo's master/2 and bar's master/4", "pachctl list-commit foo/master/2 bar/master/4",
                    "# those of foo with both commits in their provenance",
                    "pachctl list-commit foo -p bar/master/3 -p baz/master/5"),
    "squash-commit": ("# foo/2 and foo/3 into the open commit bar/1 of repo test",
                      "pachctl squash-commit test foo/2 foo/3 bar/1"),
    "replay-commit": ("# foo/2 and foo/3 again on top of branch bar of repo test",
                      "pachctl replay-commit test foo/2 foo/3 bar"),
    "flush-commit": ("# wait for what foo/master/1 and bar/master/2 cause", "pachctl flush-commit foo/master/1 bar/master/2",
                     "# only the commits that lead to repos bar and baz", "pachctl flush-commit foo/master/1 -r bar -r baz"),
    "put-file": ("# standard input into file sales of an open commit", "pachctl put-file data master/0 sales < set1.txt",
                 "# a local file, starting and finishing a commit on master around it",
                 "pachctl put-file data master sales -c -f set1.txt",
                 "# a directory tree, and a URL", "pachctl put-file data master/1 tree -r -f ./tree",
                 "pachctl put-file data master/1 page -f https://example.com/index.html"),
    "get-file": ("# a file of a commit, to standard output", "pachctl get-file sum master/0 apple > apple.txt"),
    "list-job": ("# the jobs of pipeline sum", "pachctl list-job -p sum",
                 "# the jobs that read commit master/0 of repo data", "pachctl list-job data/master/0"),
}
"""Shown under each command's -h, in the forms v1.2's help showed."""


def add(subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
        name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
    examples = EXAMPLES.get(name)
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None)
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


DEFAULT_REGISTRY = "localhost:30500"  # the registry `pachctl deploy` runs, on its NodePort


def pushed(args: argparse.Namespace, transform: pps_pb2.Transform) -> None:
    """With --push-images, the transform's image is pushed and named by its pushed name."""
    if args.push_images:
        from pachctl.push import push_image  # the Docker SDK: loaded only by a push

        transform.image = push_image(transform.image, args.registry, args.username, quiet=args.quiet)


def add_push_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--push-images", action="store_true",
                        help="push the manifest's local Docker image into the cluster registry, and use it")
    parser.add_argument("-r", "--registry", default=DEFAULT_REGISTRY,
                        help=f"the registry to push images to (default {DEFAULT_REGISTRY}, the cluster's)")
    parser.add_argument("-u", "--username", default="",
                        help="the username to push images as (default your OS username)")


def job_id(client: Client, given: str) -> str:
    """The job ID `given` names: itself if such a job exists, else the one job whose ID starts with it.

    Prefixes are resolved here, in pachctl, with one ListJob; pachd sees only whole IDs."""
    from pachyderm_client import InvalidArgumentError, NotFoundError

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
