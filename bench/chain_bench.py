"""A new commit through a chain of 5 `cp` pipelines, before and after a change, side by side.

    python -m bench.chain_bench [--before REV] [--after REV] [--runs N] [--beside-nobody]

Each build (the checkout as it is, or --after REV; and --before REV, extracted
with `git archive` and run on a Python of its own, so its pachd, client library,
job shim and warm pods are all its own: bench/common.py) gets its own pachd, all
running at once; each round times one commit through the chain and one through a
single `cp` stage on every build in turn, alternating which build goes first, so
load on the machine hits them alike. Reported: min / median of each, the load
average, and where a stage's time went (medians over every stage of every run,
from each pachd's debug log). With --beside-nobody, the build measured also runs on a
pachd of its own as the user nobody (mounting inside its pods' namespaces, not on the host).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, extract_build, process_cpu
from bench.pps_bench import chain_seconds, setup_chain, single_seconds
from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.unprivileged import NOBODY

STAGES = 5
# (phase, log line that starts it, log line that ends it): see _phases.
PHASES = (
    ("upstream output finished -> job made", "finished", "job"),
    ("job made -> StartJob arrives (output commit, plan, pod assigned, shim connects)", "job", "startjob_in"),
    ("StartJob", "startjob_in", "startjob"),
    ("StartJob answered -> FinishJob arrives (the shim's downloads, `cp`, uploads)", "startjob", "finishjob_in"),
    ("FinishJob", "finishjob_in", "finishjob"),
    ("FinishJob answered -> job SUCCESS (squash, output finished)", "finishjob", "success"),
)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _stamp(line: str) -> float | None:
    found = _STAMP.match(line)
    if found is None:
        return None
    return datetime.datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _phases(log: Path) -> dict[str, list[float]]:
    """Milliseconds of each phase of every chain stage's job, read from pachd's debug log."""
    jobs: dict[str, dict[str, float]] = {}
    finished: dict[str, float] = {}  # repo -> when its newest commit was finished
    pipeline_of: dict[str, str] = {}
    claimed: dict[str, str] = {}  # peer -> job
    last_claim = ""
    for line in log.read_text(errors="replace").splitlines():
        at = _stamp(line)
        if at is None:
            continue
        if found := re.search(r"finished commit (\w+)/(?!pod_)\w+/\d+ ", line):
            finished[found[1]] = at
        elif found := re.search(r"pipeline (stage\d+): job (\w+) for (\w+)/", line):
            jobs[found[2]] = {"job": at, **({"finished": finished[found[3]]} if found[3] in finished else {})}
            pipeline_of[found[2]] = found[1]
        elif found := re.search(r"job (\w+): pod \S+ claimed index", line):
            last_claim = found[1]
        elif (found := re.search(r"StartJob from (\S+): OK in ([\d.]+)s", line)) and last_claim in jobs:
            claimed[found[1]] = last_claim
            jobs[last_claim].update(startjob_in=at - float(found[2]), startjob=at)
        elif (found := re.search(r"FinishJob from (\S+): OK in ([\d.]+)s", line)) and claimed.get(found[1]) in jobs:
            jobs[claimed[found[1]]].update(finishjob_in=at - float(found[2]), finishjob=at)
        elif (found := re.search(r"job (\w+): SUCCESS", line)) and found[1] in jobs:
            jobs[found[1]]["success"] = at
    spans: dict[str, list[float]] = {}
    for job in jobs.values():
        for name, start, end in PHASES:
            if start in job and end in job:
                spans.setdefault(name, []).append((job[end] - job[start]) * 1000)
    return spans


def _span(values: list[float], unit: str = " s", digits: int = 3) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f}{unit}"


def run(before: str = "", after: str = "", runs: int = 7, beside_nobody: bool = False) -> list[str]:
    loads = [os.getloadavg()[0]]
    # Not under /tmp: local pods get a /tmp of their own, which would hide the build's shim from them.
    with tempfile.TemporaryDirectory(prefix=".bench-builds-", dir=ROOT) as tmp, ExitStack() as stack:
        builds: dict[str, tuple[Path, Path] | None] = {
            "after": extract_build(after, Path(tmp) / "after") if after else None}
        if before:
            builds = {"before": extract_build(before, Path(tmp) / "before"), **builds}
        users = {"after as nobody": NOBODY} if beside_nobody else {}  # the same build, its pachd not root
        if beside_nobody:
            builds["after as nobody"] = builds["after"]
            os.chmod(tmp, 0o755)
        sources = list(builds)
        servers: dict[str, PachdProcess] = {}
        clients: dict[str, Client] = {}
        for build, extracted in builds.items():
            source, python = extracted if extracted else (None, None)
            (Path(tmp) / build).mkdir(exist_ok=True)
            if build in users:
                os.chown(Path(tmp) / build, *users[build])
            server = PachdProcess(Path(tmp) / build / "pachd", source=source, python=python,
                                  user=users.get(build)).start()
            stack.callback(server.stop)
            servers[build] = server
            clients[build] = stack.enter_context(Client(server.address))
            setup_chain(clients[build], STAGES)
        chain: dict[str, list[float]] = {build: [] for build in sources}
        single: dict[str, list[float]] = {build: [] for build in sources}
        cpu: dict[str, list[float]] = {build: [] for build in sources}  # pachd's own, per commit through the chain
        for n in range(runs):
            order = list(sources) if n % 2 == 0 else list(reversed(sources))
            for build in order:
                pid = servers[build].process.pid  # type: ignore[union-attr]
                before_cpu = process_cpu(pid)
                chain[build].append(chain_seconds(clients[build], str(n), STAGES))
                cpu[build].append(process_cpu(pid) - before_cpu)
            for build in order:
                single[build].append(single_seconds(clients[build], str(n)))
            loads.append(os.getloadavg()[0])
            print(f"round {n}: " + ", ".join(f"{b} chain {chain[b][-1]:.3f} s single {single[b][-1]:.3f} s"
                                              for b in order), file=sys.stderr, flush=True)
        phases = {build: _phases(servers[build].log_path) for build in sources}
    title = f"`python -m bench.chain_bench{' --before ' + before if before else ''}{' --after ' + after if after else ''}`"
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} by {title}, {runs} rounds, the builds alternating "
             f"(load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores); min / median:", "",
             "| what | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources),
             f"| a commit through {STAGES} chained `cp` pipelines | "
             + " | ".join(f"**{_span(chain[b])}**" for b in sources) + " |",
             "| pachd's CPU for a commit through the chain | " + " | ".join(_span(cpu[b]) for b in sources) + " |",
             "| a commit through one `cp` pipeline | " + " | ".join(_span(single[b]) for b in sources) + " |",
             "| the chain / one stage (medians) | "
             + " | ".join(f"{statistics.median(chain[b]) / statistics.median(single[b]):.1f}x" for b in sources) + " |"]
    for name, _, _ in PHASES:
        lines.append(f"| a chain stage: {name}, ms | "
                     + " | ".join(_span(phases[b].get(name, [0.0]), "", 0) for b in sources) + " |")
    return lines + [""]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="", help="git revision to compare with, side by side")
    parser.add_argument("--after", default="", help="git revision to measure (default: this checkout as it is)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--beside-nobody", action="store_true",
                        help="also the same build with its pachd run as nobody, not root")
    options = parser.parse_args()
    print("\n".join(run(options.before, options.after, options.runs, options.beside_nobody)))
