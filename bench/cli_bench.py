"""pachctl's start-up: CPU seconds of `version`, `list-repo` and the shell completion helper
(a command name; repo names from pachd), side by side with `python -c pass`.

    python -m bench.cli_bench [--before DIR] [--rounds N]

With --before, every command also runs from the checkout DIR (a `git worktree` of
another revision, with its own `make install`: its .venv's Python, in DIR), each
round alternating which build goes first, so load on the machine hits both alike;
both talk to this checkout's pachd."""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT, running_pachd, scratch

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import grpc'": ["-c", "import grpc"],
    "pachctl version": ["-m", "pachctl.main", "version"],
    "pachctl list-repo": ["-m", "pachctl.main", "list-repo"],
    "pachctl __complete (commands)": ["-m", "pachctl.main", "__complete", "1", "pachctl", "list-"],
    "pachctl __complete (repos)": ["-m", "pachctl.main", "__complete", "2", "pachctl", "inspect-repo", ""],
}


@dataclass(frozen=True, slots=True)
class Build:
    name: str
    python: str
    folder: Path


def _cpu_seconds(build: Build, args: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([build.python, *args], check=True, env=env, cwd=build.folder, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(rounds: int = 10, before: Path | None = None) -> list[str]:
    builds = [Build("this checkout", sys.executable, ROOT)]
    if before is not None:
        builds.insert(0, Build(f"before ({before})", str(before / ".venv" / "bin" / "python"), before))
    with scratch() as folder, running_pachd(folder) as pachd:
        env = {**os.environ, "ADDRESS": pachd.address}
        samples = {(build.name, name): [] for build in builds for name in COMMANDS}
        for index in range(rounds):  # interleaved, so load on the machine hits every command alike
            for name, args in COMMANDS.items():
                for build in builds if index % 2 == 0 else builds[::-1]:
                    samples[build.name, name].append(_cpu_seconds(build, args, env))
    header = "| command | " + " | ".join(f"{build.name}: CPU s, min / median" for build in builds) + " |"
    lines = ["## pachctl start-up", "", header, "|---|" + "---|" * len(builds)]
    for name in COMMANDS:
        cells = [samples[build.name, name] for build in builds]
        lines.append(f"| `{name}` | " + " | ".join(f"{min(c):.3f} / {statistics.median(c):.3f}" for c in cells) + " |")
    return [*lines, "", f"{rounds} interleaved rounds; only the chosen command's module is imported.", ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", "10")))
    args = parser.parse_args()
    print("\n".join(run(args.rounds, args.before.resolve() if args.before else None)))


if __name__ == "__main__":
    main()
