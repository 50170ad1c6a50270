"""Per-file cost: a `cp` pipeline job over many small files, and `put-file -r` of many 1 KiB files.

    python -m bench.perfile_bench [--before REV] [--after REV] [--files N] [--put-files N] [--runs R]

Each run starts a fresh pachd per measurement. With --before, the same
measurements run on pachd as of git revision REV (extracted with `git archive`, with a
Python of its own: its pods and warm pods run that revision's job shim, as this checkout's
run its own, and its put-file runs that revision's pachctl and client), alternating
which build goes first, so load on the machine hits both alike. Reported per line: wall seconds and
pachd's own CPU seconds (from /proc), min / median over the runs; for the
put (of --put-files files, and of a quarter of them, to show how memory grows with the files),
pachd's peak memory (VmHWM) against a fresh pachd's. For the jobs, where all the CPU went:
pachd's (sampled every 10 ms, so split by phase), each pod's steps as its shim says them
(PACH_SHIM_TIMES=1: `start` until StartJob answered, `layout` of /pfs, the user's `code`,
`upload`; user and system CPU of the shim's threads and of the code it ran), the warm pods
started while the job ran, and the whole machine's busy CPU beside them (others' included);
and the bound cores x wall / CPU of parallelism 1. --burn adds a CPU-bound job (each
file's bytes hashed ROUNDS times over), where a second pod must pay. A fresh pachd's first job starts
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
import threading
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


def _below(pid: int) -> dict[int, float]:
    """CPU seconds (their own and their reaped children's) of the living processes below `pid`."""
    parents, times = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
            times[int(stat.parent.name)] = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            continue

    def below(other: int) -> bool:
        while other > 1:
            other = parents.get(other, 0)
            if other == pid:
                return True
        return False

    return {other: cpu for other, cpu in times.items() if below(other)}


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


# The CPU-bound stage (--burn N): each file's bytes hashed N times over (SHA-256), the last digest written out.
BURN = """python3 - {rounds} <<'EOF'
import hashlib, os, sys
rounds = int(sys.argv[1])
for top, _, names in os.walk("/pfs/many"):
    target = "/pfs/out" + top[len("/pfs/many"):]
    os.makedirs(target, exist_ok=True)
    for name in names:
        with open(os.path.join(top, name), "rb") as handle:
            data = handle.read()
        for _ in range(rounds):
            data = hashlib.sha256(data).digest()
        with open(os.path.join(target, name), "w") as handle:
            handle.write(data.hex())
EOF"""


def _job(build: Build, files: int, pods: int, settled: bool = False, burn: int = 0) -> Sample:
    with scratch() as folder, _pachd(folder, build) as pachd, Client(pachd.address) as client:
        assert pachd.process is not None
        if settled:
            _settle(client, pachd.process.pid)
        client.create_repo("many")
        commit = client.start_commit("many")
        client.put_files(("many", commit.id), [(f"d{i % 100}/f{i}", (b"%d\n" % i) * 12) for i in range(files)])
        client.finish_commit(("many", commit.id))
        script = BURN.format(rounds=burn) if burn else "cp -r /pfs/many/. /pfs/out/"
        client.create_pipeline(pipeline("copy", script, [("many", MAP)], parallelism=pods,
                                        env={"PACH_SHIM_TIMES": "1"}))
        pid = pachd.process.pid
        with _Sampler(pid) as sampler:
            out = client.flush_commit([("many", commit.id)], to_repos=["copy"], timeout=3600)[-1]
        sample = {"wall": sampler.wall, "cpu": sampler.cpu, "machine": sampler.machine, "pool": sampler.pool}
        assert sum(1 for _ in client.walk_files(("copy", out.commit.id))) == files
        job = client.list_job("copy")[0].job.id
        phases = _phases(pachd.logs())
        sample.update(phases, **_pachd_by_phase(sampler, phases), **_pod_steps(client.get_logs(job)))
        sample["all"] = round(sample["cpu"] + sample["pool"] + _pods_cpu(sample), 3)
        return sample


class _Sampler:
    """pachd's CPU seconds and the whole machine's busy CPU seconds (/proc/stat), every 10 ms, while it runs."""

    def __init__(self, pid: int) -> None:
        self._pid, self.samples = pid, list[tuple[float, float, float]]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _take(self) -> tuple[float, float, float]:
        busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        idle = int(busy[3]) + int(busy[4])  # idle, iowait
        return time.time(), _cpu(self._pid), (sum(int(v) for v in busy[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.samples.append(self._take())

    def __enter__(self) -> _Sampler:
        self._below_before = _below(self._pid)
        self.samples.append(self._take())
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self._take())
        first, last = self.samples[0], self.samples[-1]
        self.wall, self.cpu, self.machine = last[0] - first[0], last[1] - first[1], last[2] - first[2]
        # The job's pods have ended (their shims say what they spent); the living ones are the warm
        # pool's, and what those started during the job spent is the pods' start beyond the job's own.
        before = self._below_before
        self.pool = sum(cpu - before.get(other, 0.0) for other, cpu in _below(self._pid).items())

    def pachd_at(self, when: float) -> float:
        """pachd's CPU seconds at `when` (the last sample taken by then)."""
        return max((s for s in self.samples if s[0] <= when), default=self.samples[0])[1]


def _pachd_by_phase(sampler: _Sampler, phases: Sample) -> Sample:
    """pachd's CPU seconds in each phase of _phases (`<phase>_pachd`)."""
    if "t0" not in phases:
        return {}
    out, at = {}, phases["t0"]
    for phase, _ in PHASES:
        if phase in phases:
            out[f"{phase}_pachd"] = round(sampler.pachd_at(at + phases[phase]) - sampler.pachd_at(at), 3)
            at += phases[phase]
    return out


def _pod_steps(logs: Iterator[bytes]) -> Sample:
    """The pods' own steps (the shim's PACH_SHIM_TIMES line): `pod<i>_<step>` wall and `..._cpu` (user+sys) seconds."""
    out: Sample = {}
    for line in logs:
        index, _, text = line.decode(errors="replace").partition(" | ")
        if not text.startswith("job-shim: steps "):
            continue
        for item in text.split()[2:]:
            step, _, values = item.partition("=")
            wall, user, system = (float(v) for v in values.split(","))
            out[f"pod{index.strip()}_{step}"] = wall
            out[f"pod{index.strip()}_{step}_cpu"] = round(user + system, 3)
            out[f"pod{index.strip()}_{step}_sys"] = system
    return out


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
    previous = at(lines[0])
    phases = {"t0": previous}
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


def _median(samples: list[Sample], key: str) -> float:
    return statistics.median(s.get(key, 0.0) for s in samples)


def _pods_cpu(sample: Sample) -> float:
    return sum(v for k, v in sample.items() if k.startswith("pod") and k.endswith("_cpu") and not k.endswith("before_cpu"))  # noqa: E501


def _accounting(what: str, build: str, pods: int, samples: list[Sample], bound: float) -> str:
    steps = ("start", "layout", "code", "upload")
    pods_cpu = statistics.median(_pods_cpu(s) for s in samples)
    shown = "; ".join(f"{pod}: " + ", ".join(f"{step} {_median(samples, f'pod{pod}_{step}'):.2f}/"
                                             f"{_median(samples, f'pod{pod}_{step}_cpu'):.2f}" for step in steps)
                      for pod in range(pods))
    phases = ", ".join(f"{phase} {_median(samples, phase):.2f}/{_median(samples, phase + '_pachd'):.2f}"
                       for phase, _ in PHASES)
    return (f"| {'cp' if what == 'job' else 'sha256'} | {build} | {pods} | {_median(samples, 'wall'):.2f} | "
            f"{_median(samples, 'cpu'):.2f} | {pods_cpu:.2f} | {_median(samples, 'pool'):.2f} | {_median(samples, 'all'):.2f} | "
            f"{_median(samples, 'machine'):.2f} | "
            f"pachd's phases (wall/CPU): {phases}; pods {shown} | {bound:.2f}x |")


def run(before: str = "", files: int = 10_000, put_files: int = 100_000, runs: int = 2, after: str = "",
        jobs: bool = True, put: bool = True, settled: bool = False, burn: int = 0, burn_files: int = 2000) -> list[str]:
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
        if burn:
            measures["burn1"] = lambda build: _job(build, burn_files, 1, settled, burn)
            measures["burn2"] = lambda build: _job(build, burn_files, 2, settled, burn)
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
    if jobs:
        lines += ["", "Where the CPU went (medians; `pods`: the shims' own steps, user code included; `machine`: every",
                  "process's, from /proc/stat, others' included; `pool`: the warm pods started while the job ran; `all`: pachd,",
                  "pods and pool; bound: cores x wall at parallelism 1 / all CPU at parallelism 1):", "",
                  "| job | build | pods | wall s | pachd CPU s | pods' CPU s | pool CPU s | all CPU s | machine CPU s | steps (pod: wall/CPU s) | bound |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for what in ("job", "burn") if burn else ("job",):
            for build in builds:
                first = found[f"{what}1", build]
                bound = (os.cpu_count() or 1) * _median(first, "wall") / _median(first, "all")
                for pods in (1, 2):
                    lines.append(_accounting(what, build, pods, found[f"{what}{pods}", build], bound))
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
    parser.add_argument("--burn", type=int, default=0, metavar="ROUNDS",
                        help="also a CPU-bound job: each file's bytes hashed ROUNDS times over (SHA-256)")
    parser.add_argument("--burn-files", type=int, default=2000, help="files of the CPU-bound job")
    parser.add_argument("--scratch", default="", metavar="DIR",
                        help="where pachd's data dirs go (e.g. /dev/shm: the pods' files without the disk)")
    options = parser.parse_args()
    if options.scratch:
        tempfile.tempdir = options.scratch
    print("\n".join(run(options.before, options.files, options.put_files, options.runs, options.after,
                        not options.put_only, not options.jobs_only, options.settled, options.burn,
                        options.burn_files)))
