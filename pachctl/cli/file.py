"""File commands: put-file, get-file, inspect-file, list-file, delete-file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from pachctl.cli import output, progress, render
from pachctl.cli.common import add, add_diff_flags, add_shard_flags, commit_id, shard
from pachyderm_client import Client, InvalidArgumentError, reading
from pachyderm_client._base import CHUNK
from pachyderm_client.packing import SMALL_FILE
from pachyderm_client.proto import pfs_pb2

DELIMITERS = {"line": pfs_pb2.LINE, "json": pfs_pb2.JSON, "none": pfs_pb2.NONE}


def _is_url(source: str) -> bool:
    return urllib.parse.urlparse(source).scheme in ("http", "https")


def _sources(args: argparse.Namespace) -> list[str]:
    if not args.input_file:
        return list(args.file or ["-"])
    if args.input_file == "-":
        text = sys.stdin.read()
    elif _is_url(args.input_file):
        with urllib.request.urlopen(args.input_file, timeout=60) as response:
            text = response.read().decode()
    else:
        text = Path(args.input_file).read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _local_files(source: str, path: str, recursive: bool) -> Iterator[tuple[str, Path]]:
    """(path in the commit, local file) for one -f source; directories need -r."""
    local = Path(source)
    if local.is_dir():
        if not recursive:
            raise InvalidArgumentError(f"{source} is a directory; use -r to put its files")
        for directory, _, names in sorted(os.walk(local)):
            for name in sorted(names):
                full = Path(directory) / name
                yield (f"{path.rstrip('/')}/{full.relative_to(local).as_posix()}" if path else full.as_posix()), full
    else:
        yield (path or local.as_posix()), local


def put_file(args: argparse.Namespace, client: Client) -> None:
    delimiter = DELIMITERS[args.delimiter]
    with contextlib.ExitStack() as stack:
        commit_id = args.commit
        if args.commit_flag:
            commit_id = stack.enter_context(client.commit(args.repo, args.commit)).id
        for source in _sources(args):
            if source == "-":
                if not args.path:
                    raise InvalidArgumentError("name the file's path when putting from standard input")
                client.put_file((args.repo, commit_id), args.path, sys.stdin.buffer, delimiter)
            elif _is_url(source):
                path = args.path or urllib.parse.urlparse(source).path
                client.put_file_url((args.repo, commit_id), path, source, delimiter)
            else:
                files = [(path, local, local.stat().st_size) for path, local in
                         _local_files(source, args.path, args.recursive)]
                total = sum(size for _, _, size in files)
                with progress.transfer(f"put {source}", total, quiet=args.quiet) as moved:
                    if len(files) == 1 and files[0][1].is_file():  # pachd may read it itself (same machine)
                        client.put_local_file((args.repo, commit_id), files[0][0], files[0][1], delimiter, moved)
                        continue
                    contents = ((path, _contents(local, size)) for path, local, size in files)
                    client.put_files((args.repo, commit_id), contents, delimiter, moved)


def _contents(local: Path, size: int) -> bytes | Iterator[bytes]:
    """A small file's bytes (the client packs many of them into a few calls); a larger one's chunks."""
    return local.read_bytes() if size < SMALL_FILE else _chunks(local)


def _chunks(local: Path) -> Iterator[bytes]:
    """The file's bytes, opened only while the stream reads it (thousands of files stay cheap)."""
    with open(local, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def get_file(args: argparse.Namespace, client: Client) -> None:
    args.commit = commit_id(args.repo, args.commit)
    out = sys.stdout.buffer
    total = None
    if progress.wanted(args.quiet):
        total = client.inspect_file((args.repo, args.commit), args.path, args.from_commit, args.full_file,
                                    shard(args)).size_bytes
    if not args.from_commit and shard(args) is None:  # the whole file: the fast path where pachd offers it
        reading.reuse_message_memory()  # this process reads the file and ends: keep the messages' memory
        with progress.transfer(f"get {args.path}", total, quiet=args.quiet) as moved:
            client.copy_file((args.repo, args.commit), args.path, out, progress=moved)
        out.flush()
        return
    reader = client.get_file((args.repo, args.commit), args.path, from_commit=args.from_commit,
                             full_file=args.full_file, shard=shard(args))
    with progress.transfer(f"get {args.path}", total, quiet=args.quiet) as moved:
        for chunk in reader:
            out.write(chunk)
            if moved is not None:
                moved(len(chunk))
    out.flush()


def inspect_file(args: argparse.Namespace, client: Client) -> None:
    args.commit = commit_id(args.repo, args.commit)
    info = client.inspect_file((args.repo, args.commit), args.path, args.from_commit, args.full_file, shard(args))
    output.show(args, [info], lambda: render.file_info(info), single=True)


def list_file(args: argparse.Namespace, client: Client) -> None:
    args.commit = commit_id(args.repo, args.commit)
    if args.fast and args.recurse:
        raise InvalidArgumentError("give either --fast or --recurse, not both")
    mode = pfs_pb2.ListFile_FAST if args.fast else pfs_pb2.ListFile_RECURSE if args.recurse else pfs_pb2.ListFile_NORMAL
    infos = client.list_file((args.repo, args.commit), args.path, args.from_commit, args.full_file, shard(args), mode)
    output.show(args, infos, lambda: render.file_rows(infos, recurse=args.recurse, fast=args.fast))


def delete_file(args: argparse.Namespace, client: Client) -> None:
    client.delete_file((args.repo, args.commit), args.path)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    put = add(sub, "put-file", put_file, "Put a file into the filesystem (from stdin, files, directories or URLs).")
    put.add_argument("repo")
    put.add_argument("commit", metavar="commit-id (or branch with -c)")
    put.add_argument("path", nargs="?", default="", metavar="path/to/file/in/pfs")
    put.add_argument("-f", "--file", action="append", help="a local file, directory (with -r) or URL; - is stdin")
    put.add_argument("-i", "--input-file", default="", help="read file paths or URLs from this file (- for stdin)")
    put.add_argument("-r", "--recursive", action="store_true", help="recursively put the files in a directory")
    put.add_argument("-c", "--commit", dest="commit_flag", action="store_true",
                     help="start and finish the commit in addition to putting data")
    put.add_argument("-d", "--delimiter", choices=sorted(DELIMITERS), default="line",
                     help="where data may be split into blocks (default: line)")
    for name, run, text in (("get-file", get_file, "Return the contents of a file."),
                            ("inspect-file", inspect_file, "Return info about a file.")):
        parser = add(sub, name, run, text)
        for field in ("repo", "commit", "path"):
            parser.add_argument(field)
        add_shard_flags(parser)
        add_diff_flags(parser)
        if name == "inspect-file":
            output.add_flags(parser)
    listing = add(sub, "list-file", list_file, "Return the files in a directory.")
    listing.add_argument("repo")
    listing.add_argument("commit")
    listing.add_argument("path", nargs="?", default="/")
    listing.add_argument("--recurse", action="store_true", help="compute and display the sizes of directories")
    listing.add_argument("--fast", action="store_true", help="don't compute the sizes of files")
    add_shard_flags(listing)
    add_diff_flags(listing)
    output.add_flags(listing)
    delete = add(sub, "delete-file", delete_file, "Delete a file.")
    for field in ("repo", "commit", "path"):
        delete.add_argument(field)
