"""`pachctl`: the command-line client of pachd.

Each command group lives in pachctl/cli/<group>.py; this module only builds the
parser, runs the chosen command with a client, and reports errors as one line.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from collections.abc import Sequence

from pachctl import config
from pachctl.cli import commit, deploy, file, job, misc, mount, pipeline, repo
from pachctl.cli.common import add_global_flags
from pachctl.client import Client, PachydermError
from pachctl.manifest import ManifestError

GROUPS = (repo, commit, file, job, pipeline, mount, misc, deploy)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pachctl",
        description="Access the Pachyderm API. Environment: ADDRESS=<host>:<port>, the pachd to connect to "
        f"(default {config.DEFAULT_ADDRESS}).",
    )
    add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    for group in GROUPS:
        group.register(sub)
    return parser


def _unknown_command(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """An error for a first word that is no command ("did you mean ...?"), or None."""
    word = next((a for a in argv if not a.startswith("-")), None)
    choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if word is None or word in choices:
        return None
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"unknown command {word!r}" + (f"; did you mean {close[0]}?" if close else "; see pachctl -h")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    unknown = _unknown_command(parser, given)
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
        with Client() as client:
            code = args.run(args, client)
    except (PachydermError, ManifestError) as err:
        if args.verbose:
            raise
        message = err.message if isinstance(err, PachydermError) else str(err)
        print(f"pachctl: {one_line(message)}", file=sys.stderr)
        if isinstance(err, PachydermError) and err.hint:
            print(f"hint: {one_line(err.hint)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return int(code or 0)


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped, so errors stay one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def entry() -> None:
    raise SystemExit(main())


if __name__ == "__main__":
    entry()
