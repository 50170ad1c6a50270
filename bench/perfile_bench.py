"""Per-file cost: a `cp` pipeline job over many small files, and `put-file -r` of many 1 KiB files.

    python -m bench.perfile_bench [--before REV] [--after REV] [--files N] [--put-files N] [--runs R]

Each run starts a fresh pachd per measurement. With --before, the same
measurements run on pachd as of git revision REV (extracted with `git archive`, with a
Python of its own: its pods and warm pods run that revision's job shim, as this checkout's
run its own, and its put-file runs that revision's pachctl and client), alternating
which build goes first, so load on the machine hits both alike. Reported per line: wall seconds and
pachd's own CPU seconds (from /proc), min / median over the runs; for the
put (of --put-files files, and of a quarter of them, to show how memory grows with the files),
pachd's peak memory (VmHWM) against a fresh pachd's. A fresh pachd's first job starts
its pods cold while the warm pool fills beside them; with --settled, a one-file job runs
first, so the measured job finds the pool full and idle, as on a pachd that has been running. Each job's round line also says
where its time went, read off pachd's log (the time each call of the pods ended):
`start` the pods' start until the last StartJob, `list` until the last ListFileRefs,
`pod` the pods' own work (laying out /pfs, the user's code, reading /pfs/out) until the
last PutBlock, `name` until the last PutFileRefs (pachd builds the pods' trees),
`finish` until the job's SUCCESS (FinishJob, merging the pods' trees).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, extract_build, pachctl, scratch
from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import wait_until

Sample = dict[str, float]
Build = tuple[Path, Path] | None  # (tree, its Python), or None: this checkout


def _cpu(pid: int) -> float:
    """utime + stime of the process itself, in seconds (pods are not its children: not counted)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


@contextmanager
def _pachd(folder: Path, build: Build) -> Iterator[PachdProcess]:
    source, python = build if build else (None, None)
    server = PachdProcess(folder / "pachd", source=source, python=python).start()
    try:
        yield server
    finally:
        server.stop()


def _job(build: Build, files: int, pods: int, settled: bool = False) -> Sample:
    with scratch() as folder, _pachd(folder, build) as pachd, Client(pachd.address) as client:
        assert pachd.process is not None
        if settled:
            _settle(client, pachd.process.pid)
        client.create_repo("many")
        commit = client.start_commit("many")
        client.put_files(("many", commit.id), [(f"d{i % 100}/f{i}", (b"%d\n" % i) * 12) for i in range(files)])
        client.finish_commit(("many", commit.id))
        client.create_pipeline(pipeline("copy", "cp -r /pfs/many/. /pfs/out/", [("many", MAP)], parallelism=pods))
        pid = pachd.process.pid
        cpu, started = _cpu(pid), time.perf_counter()
        out = client.flush_commit([("many", commit.id)], to_repos=["copy"], timeout=3600)[-1]
        sample = {"wall": time.perf_counter() - started, "cpu": _cpu(pid) - cpu}
        assert sum(1 for _ in client.walk_files(("copy", out.commit.id))) == files
        return {**sample, **_phases(pachd.logs())}


def _settle(client: Client, pachd: int) -> None:
    """Runs a one-file job, then waits until the warm pool is full again (its pods idle: asleep)."""
    client.create_repo("first")
    with client.commit("first") as commit:
        client.put_file(("first", commit.id), "f", b"1\n")
    client.create_pipeline(pipeline("settle", "cp /pfs/first/f /pfs/out/f", [("first", MAP)]))
    client.flush_commit([("first", commit.id)], to_repos=["settle"], timeout=600)
    wait_until(lambda: _pool_idle(pachd), timeout=120, what="the warm pool to be full and idle")


def _pool_idle(pachd: int) -> bool:
    """Whether pachd has warm pods (`job-shim --warm` below it) and every one sleeps, waiting for a job."""
    parents, warm = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
            if b"--warm" in (stat.parent / "cmdline").read_bytes():
                warm[int(stat.parent.name)] = fields[0]
        except (OSError, ValueError):
            continue

    def below_pachd(pid: int) -> bool:
        while pid > 1:
            pid = parents.get(pid, 0)
            if pid == pachd:
                return True
        return False

    states = [state for pid, state in warm.items() if below_pachd(pid)]
    return bool(states) and all(state == "S" for state in states)


PHASES = (("start", "InternalJobAPI/StartJob from"), ("list", "PodData/ListFileRefs from"),
          ("pod", "BlockAPI/PutBlock from"), ("name", "PodData/PutFileRefs from"), ("finish", ": SUCCESS"))


def _phases(log: str) -> Sample:
    """Seconds between the job's steps, from when its pipeline was created (see the docstring)."""
    def at(line: str) -> float:
        return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()

    lines = log.splitlines()
    created = next((k for k, line in enumerate(lines) if "created pipeline copy" in line), None)
    if created is None:
        return {}
    lines = lines[created:]
    previous, phases = at(lines[0]), {}
    for phase, marker in PHASES:
        ends = [at(line) for line in lines if marker in line]
        if not ends:  # an older build's pods may make other calls
            continue
        phases[phase], previous = round(max(ends) - previous, 3), max(ends)
    return phases


def _put(build: Build, files: int) -> Sample:
    with scratch() as folder:
        tree = folder / "small"
        for i in range(files):
            target = tree / f"dir{i % 100}" / f"file{i}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(os.urandom(1024))
        with _pachd(folder, build) as pachd, Client(pachd.address) as client:
            assert pachd.process is not None
            client.create_repo("bench")
            fresh = _peak_rss(pachd.process.pid)
            cpu, started = _cpu(pachd.process.pid), time.perf_counter()
            _pachctl(build[0] if build else None, pachd.address, "put-file", "bench", "small", "-c", "-r", "-f", str(tree))
            wall = time.perf_counter() - started
            sample = {"wall": wall, "cpu": _cpu(pachd.process.pid) - cpu, "rate": files / wall,
                      "rss": (_peak_rss(pachd.process.pid) - fresh) / (1 << 20)}
            assert client.inspect_commit(("bench", "small")).size_bytes == files * 1024
            return sample


def _pachctl(source: Path | None, address: str, *args: str) -> None:
    """pachctl of the build at `source` (with its own client library), or of this checkout."""
    if source is None:
        pachctl(address, *args)
        return
    env = {**os.environ, "ADDRESS": address, "PYTHONPATH": f"{source / 'client'}:{source}"}
    subprocess.run([sys.executable, "-m", "pachctl.main", "-q", *args], check=True, env=env, cwd=source,
                   stdout=subprocess.DEVNULL)


def _span(samples: list[Sample], key: str, fmt: str = "{:.2f}") -> str:
    values = [s[key] for s in samples]
    return f"{fmt.format(min(values))} / {fmt.format(statistics.median(values))}"


def run(before: str = "", files: int = 10_000, put_files: int = 100_000, runs: int = 2, after: str = "",
        jobs: bool = True, put: bool = True, settled: bool = False) -> list[str]:
    # Not under /tmp: local pods get a /tmp of their own, which would hide the build's shim from them.
    with tempfile.TemporaryDirectory(prefix=".bench-builds-", dir=ROOT) as tmp:
        builds: dict[str, Build] = {"after": extract_build(after, Path(tmp) / "after") if after else None}
        if before:
            builds = {"before": extract_build(before, Path(tmp) / "before"), **builds}
        measures: dict[str, Callable[[Build], Sample]] = {
            "job1": lambda build: _job(build, files, 1, settled),
            "job2": lambda build: _job(build, files, 2, settled),
            "put": lambda build: _put(build, put_files),
            "quarter": lambda build: _put(build, put_files // 4),
        }
        if not jobs:
            measures = {"put": measures["put"], "quarter": measures["quarter"]}
        if not put:
            measures = {k: v for k, v in measures.items() if k not in ("put", "quarter")}
        found: dict[tuple[str, str], list[Sample]] = {}
        for round_no in range(runs):
            order = list(builds) if round_no % 2 == 0 else list(reversed(builds))
            for what, measure in measures.items():
                for build in order:
                    sample = measure(builds[build])
                    found.setdefault((what, build), []).append(sample)
                    print(f"round {round_no} {what} {build}: {sample}", file=sys.stderr, flush=True)
    load = os.getloadavg()[0]
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `python -m bench.perfile_bench"
             f"{' --before ' + before if before else ''}{' --settled' if settled else ''}` (load average {load:.0f} on {os.cpu_count()} cores); "
             f"min / median of {runs} runs each, the builds alternating:", "",
             "| what | build | wall s | pachd CPU s | per file |", "|---|---|---|---|---|"]
    for build in builds if jobs else ():
        one, two = found["job1", build], found["job2", build]
        per_file = statistics.median(s["wall"] for s in one) / files * 1000
        speedup = statistics.median(s["wall"] for s in one) / statistics.median(s["wall"] for s in two)
        cpu_per_file = statistics.median(s["cpu"] for s in one) / files * 1000
        lines.append(f"| `cp` job, {files} files of 100 B, parallelism 1 | {build} | {_span(one, 'wall')} | "
                     f"{_span(one, 'cpu')} | **{per_file:.2f} ms** wall (goal 0.5), "
                     f"{cpu_per_file:.2f} ms pachd CPU |")
        lines.append(f"| the same, parallelism 2 | {build} | {_span(two, 'wall')} | {_span(two, 'cpu')} | "
                     f"**{speedup:.2f}x** parallelism 1 (goal 1.7x) |")
    for build in builds if put else ():
        quarter, put = found["quarter", build], found["put", build]
        lines.append(f"| `put-file -r` of {put_files // 4} files of 1 KiB (one stream) | {build} | "
                     f"{_span(quarter, 'wall')} | {_span(quarter, 'cpu')} | "
                     f"{statistics.median(s['rate'] for s in quarter):.0f} files/s; "
                     f"pachd's peak memory +{_span(quarter, 'rss', '{:.0f}')} MiB |")
        growth = (statistics.median(s["rss"] for s in put) - statistics.median(s["rss"] for s in quarter)) * 1024
        lines.append(f"| `put-file -r` of {put_files} files of 1 KiB (one stream) | {build} | {_span(put, 'wall')} | "
                     f"{_span(put, 'cpu')} | **{statistics.median(s['rate'] for s in put):.0f} files/s** (goal 5000); "
                     f"pachd's peak memory +{_span(put, 'rss', '{:.0f}')} MiB, "
                     f"{growth / (put_files - put_files // 4):.2f} KiB per file more than at {put_files // 4} |")
    return lines + [""]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="", help="git revision to compare with, side by side")
    parser.add_argument("--after", default="", help="git revision to measure (default: this checkout as it is)")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--put-files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--put-only", action="store_true", help="measure only the put-file -r")
    parser.add_argument("--jobs-only", action="store_true", help="measure only the `cp` jobs")
    parser.add_argument("--settled", action="store_true",
                        help="run a one-file job first, so the measured job finds the warm pool full")
    options = parser.parse_args()
    print("\n".join(run(options.before, options.files, options.put_files, options.runs, options.after,
                        not options.put_only, not options.jobs_only, options.settled)))
