"""`pachctl`: the command-line client of pachd.

Each command group lives in pachctl/cli/<group>.py; this module only builds the
parser, runs the chosen command with a client, and reports errors (with their
hint on a second line). Only the chosen command's group is imported (COMMANDS
says which group holds which command), so `pachctl version` stays cheap; help
and typos load them all.
"""

from __future__ import annotations

import pachctl.lean  # noqa: F401  # first: before grpc and protobuf load
import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from pachyderm_client import config
from pachctl.cli.common import add_global_flags
from pachyderm_client import Client, PachydermError

COMMANDS = {
    "repo": ("create-repo", "inspect-repo", "list-repo", "delete-repo"),
    "commit": ("start-commit", "fork-commit", "finish-commit", "inspect-commit", "list-commit", "squash-commit",
               "replay-commit", "flush-commit", "list-branch"),
    "file": ("put-file", "get-file", "inspect-file", "list-file", "delete-file"),
    "job": ("create-job", "inspect-job", "list-job", "get-logs"),
    "pipeline": ("create-pipeline", "update-pipeline", "inspect-pipeline", "delete-pipeline", "start-pipeline",
                 "stop-pipeline", "list-pipeline", "run-pipeline"),
    "mount": ("mount", "unmount"),
    "misc": ("version", "delete-all", "archive-all"),
    "admin": ("garbage-collect",),
    "deploy": ("deploy", "port-forward"),
    "completion": ("completion",),
}
"""Each group module of pachctl/cli and the commands it registers, in help order."""
GROUP_OF = {command: group for group, commands in COMMANDS.items() for command in commands}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """pachctl's parser; with `only`, a command's name, just that command's group is loaded."""
    parser = argparse.ArgumentParser(
        prog="pachctl",
        description="Access the Pachyderm API. Environment: ADDRESS=<host>:<port>, the pachd to connect to "
        f"(default {config.DEFAULT_ADDRESS}); settings also come from {config.path()} "
        '(a JSON object: "address", "tls_ca", "token").',
    )
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    for group in [GROUP_OF[only]] if only in GROUP_OF else COMMANDS:
        importlib.import_module(f"pachctl.cli.{group}").register(sub)
    return parser


def _command_word(argv: Sequence[str]) -> str | None:
    """The command's name: the first word that is neither a flag nor the value of --address."""
    words = iter(argv)
    for word in words:
        if word == "--address":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _unknown_command(word: str | None) -> str | None:
    """An error for a first word that is no command ("did you mean ...?"), or None."""
    if word is None or word in GROUP_OF:
        return None
    import difflib  # only for a typo

    close = difflib.get_close_matches(word, list(GROUP_OF), n=1)
    return f"unknown command {word!r}" + (f"; did you mean {close[0]}?" if close else "; see pachctl -h")


def main(argv: Sequence[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else list(argv)
    if given[:1] == ["__complete"]:  # what the shell completion scripts call on each Tab
        from pachctl.cli.completion import complete

        return complete(given[1:])
    word = _command_word(given)
    parser = build_parser(word)
    unknown = _unknown_command(word)
    if unknown is not None:
        parser.print_usage(sys.stderr)
        print(f"pachctl: {unknown}", file=sys.stderr)
        return 2
    args, extra = parser.parse_known_args(given)
    if extra:  # the command's own usage, not pachctl's
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        commands.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    try:
        with Client(args.address) as client:
            code = args.run(args, client)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as err:
        if args.verbose or not _reported(err):
            raise
        message = err.message if isinstance(err, PachydermError) else str(err)
        print(f"pachctl: {one_line(message)}", file=sys.stderr)
        if isinstance(err, PachydermError) and err.hint:
            print(f"hint: {one_line(err.hint)}", file=sys.stderr)
        return 1
    return int(code or 0)


def _reported(err: Exception) -> bool:
    """Errors reported as a line, not a traceback: the client's, and malformed manifests."""
    manifest = sys.modules.get("pachctl.manifest")  # loaded only by the commands that read manifests
    return isinstance(err, (PachydermError, config.ConfigError)) or (
        manifest is not None and isinstance(err, manifest.ManifestError))


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped, so errors stay one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
