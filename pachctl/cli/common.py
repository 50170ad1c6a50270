"""What several command modules share: argument helpers and the command signature."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pachctl.client import Client
from pachctl.push import DEFAULT_REGISTRY, push_image
from protos import pfs_pb2, pps_pb2

Command = Callable[[argparse.Namespace, Client], int | None]


def add(subparsers: argparse._SubParsersAction,  # type: ignore[type-arg]
        name: str, run: Command, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(run=run)
    return parser


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


def pushed(args: argparse.Namespace, transform: pps_pb2.Transform) -> None:
    """With --push-images, the transform's image is pushed and named by its pushed name."""
    if args.push_images:
        transform.image = push_image(transform.image, args.registry, args.username, quiet=args.quiet)


def add_push_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-p", "--push-images", action="store_true",
                        help="push the manifest's local Docker image into the cluster registry, and use it")
    parser.add_argument("-r", "--registry", default=DEFAULT_REGISTRY,
                        help=f"the registry to push images to (default {DEFAULT_REGISTRY}, the cluster's)")
    parser.add_argument("-u", "--username", default="",
                        help="the username to push images as (default your OS username)")

