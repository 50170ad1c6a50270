"""pachctl's start-up: CPU seconds of `version`, `list-repo` and the shell completion helper
(a command name; repo names from pachd), side by side with `python -c pass`."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys

from bench.common import running_pachd, scratch

COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "python -c 'import grpc'": ["-c", "import grpc"],
    "pachctl version": ["-m", "pachctl.main", "version"],
    "pachctl list-repo": ["-m", "pachctl.main", "list-repo"],
    "pachctl __complete (commands)": ["-m", "pachctl.main", "__complete", "1", "pachctl", "list-"],
    "pachctl __complete (repos)": ["-m", "pachctl.main", "__complete", "2", "pachctl", "inspect-repo", ""],
}


def _cpu_seconds(args: list[str], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, *args], check=True, env=env, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(rounds: int = 10) -> list[str]:
    with scratch() as folder, running_pachd(folder) as pachd:
        env = {**os.environ, "ADDRESS": pachd.address}
        samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(rounds):  # interleaved, so load on the machine hits every command alike
            for name, args in COMMANDS.items():
                samples[name].append(_cpu_seconds(args, env))
    baseline = statistics.median(samples["python -c pass"])
    lines = ["## pachctl start-up", "", "| command | CPU s (min) | CPU s (median) | × `python -c pass` |",
             "|---|---|---|---|"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"| `{name}` | {min(values):.3f} | {median:.3f} | {median / baseline:.1f} |")
    return [*lines, "", f"Median of {rounds} interleaved runs; only the chosen command's module is imported.", ""]


if __name__ == "__main__":
    print("\n".join(run(int(os.environ.get("ROUNDS", "10")))))
