"""PPS: commit-to-output latency (one stage and a chain of five), parallel speed-up,
incremental gain, `cp` jobs over many small files and their re-runs after a small change,
and the shim's CPU until StartJob (cold and warm).

`python -m bench.pps_bench [latency|chain|files|reruns|shim ...] [--before REV]` runs some sections
alone; with --before (a git revision, extracted beside this checkout and run on this Python),
or BEFORE=DIR (a checkout of another revision with its own `make install`), the shim section
also measures that build's cold shim, interleaved with this one's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, extract_revision, process_cpu, running_pachd, scratch
from pachd.executor.warm import READY
from tests.support.pachd import PachdProcess
from tests.support.unprivileged import NOBODY
from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.pipelines import MAP, REDUCE, pipeline

# CPU-bound work per input file: hash it many times.
BURN = "for f in /pfs/{repo}/*; do i=0; while [ $i -lt {rounds} ]; do sha256sum $f > /dev/null; i=$((i+1)); done; " \
       "cat $f >> /pfs/out/done; done"


def run(latency_runs: int = 20, files: int = 10_000, sections: tuple[str, ...] = (), before: str = "",
        user: tuple[int, int] | None = None) -> list[str]:
    wanted = set(sections) or {"latency", "chain", "parallel", "incremental", "files", "reruns", "shim"}
    lines = ["## PPS", ""]
    with scratch() as folder, running_pachd(folder) as pachd, Client(pachd.address) as client:
        if "latency" in wanted:
            lines += _latency(client, latency_runs)
        if "chain" in wanted:
            lines += _chain(client, max(3, latency_runs // 4))
        if "parallel" in wanted:
            lines += _parallel(client)
        if "incremental" in wanted:
            lines += _incremental(client)
    if "shim" in wanted:
        with scratch() as folder:
            server = PachdProcess(folder / "pachd", extra_args=["--allow-anonymous-pods"]).start()
            try:
                checkout = Path(os.environ["BEFORE"]).resolve() if os.environ.get("BEFORE") else None
                if before:
                    checkout = extract_revision(before, folder / "before")
                lines += _shim_start(server.address, before=checkout, label=before)
            finally:
                server.stop()
    if "files" in wanted:
        lines += _many_files(files)
    if "reruns" in wanted:
        lines += _reruns((files, 3 * files), user=user)
    return lines


def _commit(client: Client, repo: str, files: int, tag: str, size: int = 4096) -> tuple[str, float]:
    """Puts `files` files in a new commit; returns its ID and when finish-commit was called."""
    commit = client.start_commit(repo)
    client.put_files((repo, commit.id), [(f"{tag}{i}", (f"{tag}{i}\n" * size)[:size].encode()) for i in range(files)])
    finished = time.perf_counter()
    client.finish_commit((repo, commit.id))
    return commit.id, finished


def _flush_seconds(client: Client, repo: str, files: int, tag: str, to: str) -> float:
    commit, started = _commit(client, repo, files, tag)
    client.flush_commit([(repo, commit)], to_repos=[to], timeout=600)
    return time.perf_counter() - started


def _latency(client: Client, runs: int) -> list[str]:
    client.create_repo("lat")
    client.create_pipeline(pipeline("latcopy", "cp /pfs/lat/* /pfs/out/", [("lat", MAP)]))
    times = [_flush_seconds(client, "lat", 1, f"r{n}_", "latcopy") for n in range(runs)]
    median = statistics.median(times)
    return [f"Latency from `finish-commit` on the input to the output commit finished, trivial `cp` pipeline, "
            f"median of {runs}: **{median:.3f} s** (min {min(times):.3f} s, max {max(times):.3f} s; goal 0.5 s).", ""]


def _parallel(client: Client) -> list[str]:
    client.create_repo("cpu")
    commit, _ = _commit(client, "cpu", 16, "c")
    seconds = {}
    for pods in (1, 2):
        name = f"burn{pods}"
        client.create_pipeline(pipeline(name, BURN.format(rounds=400, repo="cpu"), [("cpu", MAP)], parallelism=pods))
        started = time.perf_counter()
        client.flush_commit([("cpu", commit)], to_repos=[name], timeout=600)
        seconds[pods] = time.perf_counter() - started
        client.stop_pipeline(name)
    return [f"CPU-bound map pipeline on 16 files: parallelism 1 took {seconds[1]:.2f} s, parallelism 2 took "
            f"{seconds[2]:.2f} s: **{seconds[1] / seconds[2]:.2f}x** on this machine's 2 cores (goal 1.7x).", ""]


def _incremental(client: Client) -> list[str]:
    client.create_repo("inc")
    client.create_pipeline(pipeline("incmap", BURN.format(rounds=100, repo="inc"), [("inc", MAP)]))
    client.create_pipeline(pipeline("incall", BURN.format(rounds=100, repo="inc"), [("inc", REDUCE)]))
    _flush_seconds(client, "inc", 8, "a", "incall")
    commit, _ = _commit(client, "inc", 8, "b")
    client.flush_commit([("inc", commit)], timeout=600)
    durations = {}
    for name in ("incmap", "incall"):
        job = next(j for j in client.list_job(name) if any(i.commit.id == commit for i in j.inputs))
        job = client.inspect_job(job.job.id, block_state=True)
        durations[name] = (job.finished.ToNanoseconds() - job.started.ToNanoseconds()) / 1e9
        assert job.state == pps_pb2.JOB_SUCCESS
    return [f"The second of two equal commits (8 files each): the incremental map job took {durations['incmap']:.2f} s, "
            f"re-processing both commits took {durations['incall']:.2f} s: **{durations['incall'] / durations['incmap']:.2f}x**"
            " faster incrementally.", ""]


def setup_chain(client: Client, stages: int = 5) -> None:
    """Repo `chain` feeding `stages` chained `cp` pipelines (stage1...), and repo `single` feeding one (onestage)."""
    client.create_repo("chain")
    previous = "chain"
    for n in range(1, stages + 1):
        client.create_pipeline(pipeline(f"stage{n}", f"cp /pfs/{previous}/* /pfs/out/", [(previous, MAP)]))
        previous = f"stage{n}"
    client.create_repo("single")
    client.create_pipeline(pipeline("onestage", "cp /pfs/single/* /pfs/out/", [("single", MAP)]))


def chain_seconds(client: Client, tag: str, stages: int = 5) -> float:
    """A new commit on `chain` until the last stage's output is finished (see setup_chain)."""
    return _flush_seconds(client, "chain", 1, f"c{tag}_", f"stage{stages}")


def single_seconds(client: Client, tag: str) -> float:
    return _flush_seconds(client, "single", 1, f"s{tag}_", "onestage")


def _chain(client: Client, runs: int, stages: int = 5) -> list[str]:
    """A new commit through `stages` chained `cp` pipelines, against one `cp` stage in the same run."""
    setup_chain(client, stages)
    chain, single = [], []
    for n in range(runs):  # interleaved, so load on the machine hits both alike
        chain.append(chain_seconds(client, str(n), stages))
        single.append(single_seconds(client, str(n)))
    return [f"A new input commit through a chain of {stages} `cp` pipelines, median of {runs}: "
            f"**{statistics.median(chain):.3f} s** (min {min(chain):.3f} s; goal 1 s); one stage in the same run: "
            f"{statistics.median(single):.3f} s (min {min(single):.3f} s): "
            f"{statistics.median(chain) / statistics.median(single):.1f}x one stage.", ""]


def _many_files(files: int, size: int = 100) -> list[str]:
    """A `cp` job over many small files at parallelism 1 and 2 (each on a fresh pachd), against a local `cp -r`."""
    seconds: dict[int, float] = {}
    for pods in (1, 2):
        with scratch() as folder, running_pachd(folder) as pachd, Client(pachd.address) as client:
            client.create_repo("many")
            commit = client.start_commit("many")
            client.put_files(("many", commit.id), [(f"d{i % 100}/f{i}", (b"%d\n" % i) * (size // 8))
                                                 for i in range(files)])
            client.finish_commit(("many", commit.id))
            client.create_pipeline(pipeline("copy", "cp -r /pfs/many/. /pfs/out/", [("many", MAP)], parallelism=pods))
            started = time.perf_counter()
            out = client.flush_commit([("many", commit.id)], to_repos=["copy"], timeout=3600)[-1]
            seconds[pods] = time.perf_counter() - started
            assert sum(1 for _ in client.walk_files(("copy", out.commit.id))) >= files
    with scratch() as folder:
        source = folder / "src"
        for i in range(files):
            (source / f"d{i % 100}").mkdir(parents=True, exist_ok=True)
            (source / f"d{i % 100}" / f"f{i}").write_bytes((b"%d\n" % i) * (size // 8))
        started = time.perf_counter()
        subprocess.run(["cp", "-r", str(source), str(folder / "dst")], check=True)
        reference = time.perf_counter() - started
    per_file = seconds[1] / files * 1000
    return [f"`cp` pipeline over {files} files of {size} B, from the input commit to the output commit: "
            f"parallelism 1 {seconds[1]:.2f} s (**{per_file:.2f} ms per file**; goal 0.5 ms), parallelism 2 "
            f"{seconds[2]:.2f} s (**{seconds[1] / seconds[2]:.2f}x**; goal 1.7x); a local `cp -r` of the same files: "
            f"{reference:.2f} s.", ""]


def _reruns(sizes: tuple[int, ...], changed: int = 100, rounds: int = 5, size: int = 1024,
            user: tuple[int, int] | None = None) -> list[str]:
    """A `cp` pipeline's first job over each number of files, then its re-runs, each after a commit
    replacing the same number of files (`changed`): interleaved between the sizes, in one pachd. A
    re-run that costs what changed takes as long whatever the previous output holds; one that
    copies the previous output grows with it, as the first job does. With `user`, pachd runs as
    that unprivileged user (and mounts inside its pods' namespaces)."""
    first: dict[int, tuple[float, float]] = {}
    again: dict[int, list[tuple[float, float]]] = {n: [] for n in sizes}
    with scratch() as folder, running_pachd(folder, user) as pachd, Client(pachd.address) as client:
        assert pachd.process is not None
        pid = pachd.process.pid

        def measured(action: Callable[[], object]) -> tuple[float, float]:
            cpu, started = process_cpu(pid, reaped=True), time.perf_counter()
            action()
            return time.perf_counter() - started, process_cpu(pid, reaped=True) - cpu

        for n in sizes:
            repo = f"in{n}"
            client.create_repo(repo)
            commit = client.start_commit(repo)
            client.put_files((repo, commit.id), [(f"f{i}", (b"%d\n" % i * size)[:size]) for i in range(n)])
            client.finish_commit((repo, commit.id))
            client.create_pipeline(pipeline(f"cp{n}", f"cp -r /pfs/{repo}/. /pfs/out/", [(repo, MAP)]))
            first[n] = measured(lambda: client.flush_commit([(repo, commit.id)], to_repos=[f"cp{n}"], timeout=3600))
        for round_ in range(rounds):
            for n in sizes:
                repo = f"in{n}"
                # The previous job's output is laid out as soon as it finished: the gap a real commit leaves.
                _pachd_idle(pid)
                commit = client.start_commit(repo)
                names = [f"f{(round_ * changed + k) * 7919 % n}" for k in range(changed)]
                client.put_files((repo, commit.id), [(name, b"changed %d %s\n" % (round_, name.encode()))
                                                     for name in names])
                client.finish_commit((repo, commit.id))
                again[n].append(measured(lambda: client.flush_commit([(repo, commit.id)], to_repos=[f"cp{n}"],
                                                                      timeout=3600)))
    small, large = sizes[0], sizes[-1]

    def cell(runs: list[tuple[float, float]]) -> str:
        walls, cpus = sorted(w for w, _ in runs), sorted(c for _, c in runs)
        return f"{walls[0]:.3f} / {statistics.median(walls):.3f} s (pachd and pods' CPU {statistics.median(cpus):.3f} s)"

    who = "" if user is None else f"pachd as uid {user[0]}; "
    lines = [f"{who}`cp` pipelines over {' and '.join(f'{n:,}' for n in sizes)} files of {size} B; each re-run after "
             f"{changed} files changed (a map input: the re-run's /pfs/<input> holds those {changed}), {rounds} "
             "rounds interleaved between the sizes, min / median:", "",
             "| previous output | first job | re-run | first / re-run |", "|---|---|---|---|"]
    for n in sizes:
        median = statistics.median(w for w, _ in again[n])
        lines.append(f"| {n:,} files | {first[n][0]:.3f} s (CPU {first[n][1]:.3f} s) | {cell(again[n])} | "
                     f"{first[n][0] / median:.1f}x |")
    growth = statistics.median(w for w, _ in again[large]) / statistics.median(w for w, _ in again[small])
    lines += ["", f"Re-run at {large:,} files / at {small:,}: **{growth:.2f}x** for {large // small}x the previous "
              "output (1x: it costs what changed; "
              f"{large // small}x: what the output holds).", ""]
    return lines


def _pachd_idle(pid: int, quiet: float = 0.2, deadline: float = 30.0) -> None:
    """Waits until pachd has used almost no CPU for `quiet` seconds (its work after a job is done)."""
    ends = time.monotonic() + deadline
    while time.monotonic() < ends:
        before = process_cpu(pid)
        time.sleep(quiet)  # a sampling interval, not a wait for a result: the loop ends on what it measures
        if process_cpu(pid) - before < quiet * 0.05:
            return


def _cpu_seconds(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _warm_shim_cpu(env: dict[str, str], job: str | None) -> float:
    """CPU of a warm shim (`job-shim --warm`) that is given `job` once ready (None: the pool closes)."""
    ours, theirs = socket.socketpair()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    shim = subprocess.Popen([sys.executable, "-m", "shim.main", "--warm"], stdin=theirs, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    theirs.close()
    assert ours.makefile("rb").readline() == READY
    if job is not None:
        ours.sendall(json.dumps({"job_id": job, "env": env}).encode() + b"\n")
    ours.close()
    assert shim.wait() == 0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _shim_start(address: str, runs: int = 10, before: Path | None = None, label: str = "") -> list[str]:
    """CPU the shim spends until StartJob has answered (a job that does not exist: it then exits),
    cold and warm (from its assignment on), against `python -c pass` and `import grpc`; with
    `before`, that checkout's cold shim too (its own virtualenv's Python, or this one for a tree
    extracted from revision `label`). Each build runs once first, so both have their bytecode."""
    env = {"PATH": os.environ.get("PATH", ""), "PACHD_ADDRESS": address, "PYTHONPATH": str(ROOT)}
    samples: dict[str, list[float]] = {"cold": [], "warm": [], "ready": [], "pass": [], "grpc": [], "before": []}
    _cold_shim_cpu(env, ROOT)
    if before is not None:
        _cold_shim_cpu(_before_env(env, before), before)
    for index in range(runs):  # interleaved
        if before is not None and index % 2 == 0:
            samples["before"].append(_cold_shim_cpu(_before_env(env, before), before))
        samples["cold"].append(_cold_shim_cpu(env, ROOT))
        if before is not None and index % 2 == 1:
            samples["before"].append(_cold_shim_cpu(_before_env(env, before), before))
        samples["warm"].append(_warm_shim_cpu(env, "no-such-job"))
        samples["ready"].append(_warm_shim_cpu(env, None))
        samples["pass"].append(_cpu_seconds([sys.executable, "-c", "pass"]))
        samples["grpc"].append(_cpu_seconds([sys.executable, "-c", "import grpc"]))
    med = {name: statistics.median(values) for name, values in samples.items() if values}
    low = {name: min(values) for name, values in samples.items() if values}
    compared = (f"; the cold shim of {label or before}, interleaved: {med['before']:.3f} s ({low['before']:.3f} s)"
                if before is not None else "")
    return [f"The job shim's CPU until StartJob answered, median (min) of {runs}: cold (`job-shim JOB`) "
            f"**{med['cold']:.3f} s** ({low['cold']:.3f} s; goal 0.1 s){compared}; a warm pod from its assignment on "
            f"(a warm shim given the job, {med['warm']:.3f} s, less one told to leave, {med['ready']:.3f} s): "
            f"**{med['warm'] - med['ready']:.3f} s**; "
            f"`python -c pass` {med['pass']:.3f} s ({low['pass']:.3f} s), `python -c 'import grpc'` "
            f"{med['grpc']:.3f} s ({low['grpc']:.3f} s).", ""]


def _before_env(env: dict[str, str], checkout: Path) -> dict[str, str]:
    """`env` for the shim of `checkout`: its own code first on the path (the client library's too)."""
    return {**env, "PYTHONPATH": f"{checkout / 'client'}:{checkout}"}


def _cold_shim_cpu(env: dict[str, str], checkout: Path) -> float:
    """A cold shim of `checkout` (its virtualenv's Python, if it has one) asking for a job that does not exist."""
    venv = checkout / ".venv" / "bin" / "python"
    python = str(venv) if checkout != ROOT and venv.exists() else sys.executable
    return _cpu_seconds([python, "-m", "shim.main", "no-such-job"], env, cwd=checkout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sections", nargs="*", help="latency, chain, parallel, incremental, files, reruns, shim (default: all)")
    parser.add_argument("--before", default="", help="git revision whose cold shim runs beside this one's")
    parser.add_argument("--as-nobody", action="store_true", help="reruns: pachd runs as nobody, not as root")
    args = parser.parse_args()
    print("\n".join(run(latency_runs=int(os.environ.get("RUNS", "12")), files=int(os.environ.get("FILES", "10000")),
                        sections=tuple(args.sections), before=args.before,
                        user=NOBODY if args.as_nobody else None)))
