"""Shell completion: `pachctl completion bash|zsh|fish` prints a script; the
script calls the hidden `pachctl __complete <index> <words...>` on each Tab.

`__complete` prints the candidates for words[index], one per line: commands,
the command's flags, choices, and names it asks pachd for (repos, branches and
commits of the repo named earlier on the line, files, pipelines, jobs). It
loads only the command's own group, never writes to stderr, and prints nothing
when pachd cannot be reached. Exit status 4 asks the shell for file names.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client is imported only when names are needed
    from pachyderm_client import Client

SHELLS = ("bash", "zsh", "fish")
FILES = 4
"""__complete's exit status that asks the shell to complete local file names."""
CONNECT_SECONDS = 1.0
HELPER = "__complete"

_FILE_DESTS = {"file", "input_file", "mountpoint"}
_REPO_COMMIT_METAVARS = {"repo/commit", "repo[/commit]"}


def show_script(args: argparse.Namespace, client: object) -> None:
    sys.stdout.write(resources.files("pachctl.cli").joinpath(f"completion.{args.shell}").read_text())


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from pachctl.cli.common import add

    parser = add(sub, "completion", show_script,
                 "Print a shell completion script (bash, zsh or fish); see the README for where to put it.")
    parser.add_argument("shell", choices=SHELLS)


@dataclass(slots=True)
class _Line:
    """What the words before the cursor say: the command, its positionals, flag values."""

    command: str | None = None
    positionals: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # flag dest -> value
    pending: argparse.Action | None = None  # the flag whose value is being typed
    current: str = ""  # the word being completed
    rest: int = 0  # where the command's own words start


def complete(argv: Sequence[str]) -> int:
    """`pachctl __complete <index> <word>...`: prints the candidates for word[index]."""
    sys.stderr.flush()
    saved = os.dup(2)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 2)  # grpc's own logging too: nothing reaches the terminal
    try:
        index = int(argv[0])
        words = list(argv[1:])
        current = words[index] if index < len(words) else ""
        if current == "=":  # bash's word for the cursor right after `--flag=`: the value is empty
            current = ""
        found = _candidates(words[1:index], current)
    except Exception:
        return 0
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(quiet)
    if found is None:
        return FILES
    for candidate in sorted(set(found)):
        if candidate.startswith(current):
            print(candidate)
    return 0


def _candidates(before: list[str], current: str) -> Iterable[str] | None:
    """Candidates for `current`, after the words `before` it (pachctl itself left out); None: files."""
    from pachctl.cli.common import add_global_flags
    from pachctl.main import COMMANDS, build_parser

    root = argparse.ArgumentParser(prog="pachctl")  # pachctl's own flags, no command group loaded
    add_global_flags(root)
    line = _parse(root, before, _Line(current=current))
    if line.command is None:
        if line.pending is not None:
            return None if line.pending.dest != "address" else []
        if current.startswith("-"):
            return _flags(root)
        return [c for group in COMMANDS.values() for c in group]
    parser = _subparser(build_parser(line.command), line.command)
    if parser is None:
        return []
    line = _parse(parser, before[line.rest:], line)
    if line.pending is not None:
        return _values(line.pending, line)
    if current.startswith("-"):
        return _flags(parser)
    positionals = [a for a in parser._actions if not a.option_strings]
    action = _positional_at(positionals, len(line.positionals))
    return _values(action, line) if action is not None else []


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser | None = action.choices.get(command)
            return found
    return None


def _parse(parser: argparse.ArgumentParser, words: list[str], line: _Line) -> _Line:
    """Walks `words` as `parser` would (roughly): the first positional of pachctl's own parser is the command."""
    flags = {s: a for a in parser._actions for s in a.option_strings}
    line.pending = None
    for position, word in enumerate(words):
        if word == "=" and line.pending is not None:
            continue  # bash splits `--flag=value` into three words
        if line.pending is not None:
            line.values[line.pending.dest] = word
            line.pending = None
        elif word.startswith("-") and word != "-":
            name, eq, value = word.partition("=")
            action = flags.get(name)
            if action is not None and action.nargs != 0:
                if eq:
                    line.values[action.dest] = value
                else:
                    line.pending = action
        elif line.command is None:
            line.command, line.rest = word, position + 1
            return line  # the rest is the command's
        else:
            line.positionals.append(word)
    return line


def _positional_at(actions: list[argparse.Action], count: int) -> argparse.Action | None:
    """The positional argument the (count+1)th positional word fills."""
    for action in actions:
        if action.nargs in ("*", "+", argparse.REMAINDER):
            return action
        if count == 0:
            return action
        count -= 1
    return None


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [s for a in parser._actions for s in a.option_strings if a.help != argparse.SUPPRESS]


def _values(action: argparse.Action, line: _Line) -> Iterable[str] | None:
    """What may fill `action`: its choices, local files, or names from pachd."""
    if action.choices:
        return [str(c) for c in action.choices]
    if action.dest in _FILE_DESTS:
        return None
    source = _repo_commits if action.metavar in _REPO_COMMIT_METAVARS else _SOURCES.get(action.dest)
    if source is None:
        return []
    from pachyderm_client import Client

    address = line.values.get("address")
    client = Client(address, connect_timeout=CONNECT_SECONDS)
    try:
        return list(source(client, line))
    finally:
        client.close()


def _repos(client: Client, line: _Line) -> Iterable[str]:
    return [info.repo.name for info in client.list_repo()]


def _repo_of(line: _Line) -> str:
    return line.positionals[0] if line.positionals else ""


def _commits_of(client: Client, repo: str) -> list[str]:
    """The repo's branches and commit IDs."""
    branches = client.list_branch(repo)
    return branches + [info.commit.id for info in client.list_commit([(repo, "")])]


def _commits(client: Client, line: _Line) -> Iterable[str]:
    repo = _repo_of(line)
    return _commits_of(client, repo) if repo else []


def _repo_commits(client: Client, line: _Line) -> Iterable[str]:
    """`repo` or `repo/commit` words."""
    repos = list(_repos(client, line))
    repo, slash, _ = line.current.partition("/")
    if slash and repo in repos:
        return [f"{repo}/{c}" for c in _commits_of(client, repo)]
    return repos


def _paths(client: Client, line: _Line) -> Iterable[str]:
    """Files and directories (ending in /) under the directory being typed."""
    if len(line.positionals) < 2:
        return []
    parent = line.current.rsplit("/", 1)[0] + "/" if "/" in line.current else ""
    from pachyderm_client.proto import pfs_pb2

    shown = []
    for info in client.list_file((line.positionals[0], line.positionals[1]), parent.rstrip("/") or "/"):
        path = info.file.path.lstrip("/")
        shown.append(path + "/" if info.file_type == pfs_pb2.FILE_TYPE_DIR else path)
    return shown


def _pipelines(client: Client, line: _Line) -> Iterable[str]:
    return [info.pipeline.name for info in client.list_pipeline()]


def _jobs(client: Client, line: _Line) -> Iterable[str]:
    return [info.job.id for info in client.list_job()]

_SOURCES: dict[str, Callable[[Client, _Line], Iterable[str]]] = {
    "repo": _repos, "repos": _repos, "commit": _commits, "parent": _commits, "from_commit": _commits,
    "commits": _commits, "path": _paths, "pipeline": _pipelines, "job": _jobs, "provenance": _repo_commits,
}
