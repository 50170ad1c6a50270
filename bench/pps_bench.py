"""PPS: commit-to-output latency, parallel speed-up, incremental gain."""

from __future__ import annotations

import statistics
import time

from bench.common import running_pachd, scratch
from pachctl.client import Client
from protos import pps_pb2
from tests.support.pipelines import MAP, REDUCE, pipeline

# CPU-bound work per input file: hash it many times.
BURN = "for f in /pfs/{repo}/*; do i=0; while [ $i -lt {rounds} ]; do sha256sum $f > /dev/null; i=$((i+1)); done; " \
       "cat $f >> /pfs/out/done; done"


def run(latency_runs: int = 20) -> list[str]:
    with scratch() as folder, running_pachd(folder) as pachd, Client(pachd.address) as client:
        lines = ["## PPS", ""]
        lines += _latency(client, latency_runs)
        lines += _parallel(client)
        lines += _incremental(client)
    return lines


def _commit(client: Client, repo: str, files: int, tag: str, size: int = 4096) -> tuple[str, float]:
    """Puts `files` files in a new commit; returns its ID and when finish-commit was called."""
    commit = client.start_commit(repo)
    client.put_files(repo, commit.id, [(f"{tag}{i}", (f"{tag}{i}\n" * size)[:size].encode()) for i in range(files)])
    finished = time.perf_counter()
    client.finish_commit(repo, commit.id)
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
