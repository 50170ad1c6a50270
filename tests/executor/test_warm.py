"""Warm pods (local executor): started ahead of their jobs, confined exactly like a job's
pod, holding no job and no credential until one job takes them (pachd/executor/warm.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachd.executor.warm import READY, WARM_DIR
from pachyderm_client.proto import pps_pb2
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import wait_until

TIMEOUT = 120
# What the pod's code can tell about its confinement; the parent's command line says which shim ran it.
LOOK = """
tr '\\0' ' ' < /proc/$PPID/cmdline > /pfs/out/shim
{ id; hostname; grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; ls -a / /run /run/pachd /tmp /dev
  cut -d' ' -f5,6 /proc/self/mountinfo | sort; } > /pfs/out/confinement
env | grep -v -E '^(PWD|SHLVL|_|PACHD_ADDRESS|PACHD_PORT_650_TCP_PORT|PACH_JOB_TOKEN)=' | sort > /pfs/out/env
env | grep -c '^PACH_JOB_TOKEN=.' > /pfs/out/token
"""


def _pachd(root: Path, warm: int) -> PachdProcess:
    return PachdProcess(root / f"data{warm}", extra_args=["--warm-pods", str(warm)]).start()


@pytest.fixture
def warm_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    server = _pachd(tmp_path, 2)
    yield server
    server.stop()


def _look(client: Client, pipelines: int) -> dict[str, bytes]:
    """Runs `pipelines` LOOK pipelines, one after another, on one commit; what the last one's pod
    saw. Each job is its pipeline's first (a job with a parent starts cold: its previous output
    is mounted before the pod starts, see pachd/executor/overlay.py)."""
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x\n")
    for n in range(pipelines):
        client.create_pipeline(pipeline(f"look{n}", LOOK, [("data", MAP)]))
        out = client.flush_commit([("data", c.id)], to_repos=[f"look{n}"], timeout=TIMEOUT)[-1]
        jobs = client.list_job(f"look{n}")
        assert jobs and all(j.state == pps_pb2.JOB_SUCCESS for j in jobs)
    return {name: client.get_file_bytes((f"look{pipelines - 1}", out.commit.id), name)
            for name in ("shim", "confinement", "env", "token")}


def _warm_pids(server: PachdProcess) -> list[int]:
    """The outer processes of the idle warm pods."""
    pids = []
    for pid_file in (server.data_dir / "pods" / WARM_DIR).glob("*/pid"):
        try:
            pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def _tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def test_a_warm_pod_is_confined_and_set_up_like_a_cold_one(tmp_path: Path) -> None:
    seen = {}
    for warm in (0, 2):
        server = _pachd(tmp_path, warm)
        try:
            with Client(server.address) as client:
                seen[warm] = _look(client, pipelines=2)  # the second job's pod: from the pool started by the first
        finally:
            server.stop()
    assert b"--warm" not in seen[0]["shim"] and b"--warm" in seen[2]["shim"]
    assert seen[2]["confinement"] == seen[0]["confinement"]
    assert seen[2]["env"] == seen[0]["env"]
    assert seen[2]["token"].strip() == seen[0]["token"].strip() == b"1"  # its own job's credential, once assigned


def test_an_idle_warm_pod_holds_no_job_and_no_credential(warm_pachd: PachdProcess) -> None:
    with Client(warm_pachd.address) as client:
        _look(client, pipelines=1)
    wait_until(lambda: len(_warm_pids(warm_pachd)) == 2, timeout=TIMEOUT, what="two idle warm pods")
    for outer in _warm_pids(warm_pachd):
        for pid in _tree(outer):
            environ = _environ(pid)
            assert b"PACH_JOB_TOKEN" not in environ and b"PACH_POD_NAME" not in environ
            assert b"_COMMIT_ID=" not in environ


def test_a_warm_pod_that_dies_is_replaced_and_jobs_still_run(warm_pachd: PachdProcess) -> None:
    with Client(warm_pachd.address) as client:
        _look(client, pipelines=1)
        wait_until(lambda: len(_warm_pids(warm_pachd)) == 2, timeout=TIMEOUT, what="two idle warm pods")
        victim = _warm_pids(warm_pachd)[0]
        os.killpg(victim, signal.SIGKILL)
        wait_until(lambda: victim not in _warm_pids(warm_pachd) and len(_warm_pids(warm_pachd)) == 2,
                   timeout=TIMEOUT, what="a new warm pod in the dead one's place")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "again", b"x\n")
        client.flush_commit([("data", c.id)], to_repos=["look0"], timeout=TIMEOUT)
        assert all(j.state == pps_pb2.JOB_SUCCESS for j in client.list_job("look0"))


def test_a_warm_shim_says_ready_and_leaves_quietly_when_the_pool_closes() -> None:
    ours, theirs = socket.socketpair()
    shim = subprocess.Popen([sys.executable, "-m", "shim.main", "--warm"], stdin=theirs,
                            env={"PATH": os.environ.get("PATH", "")})
    theirs.close()
    try:
        ours.settimeout(TIMEOUT)
        assert ours.makefile("rb").readline() == READY
        ours.close()
        assert shim.wait(TIMEOUT) == 0
    finally:
        shim.kill()
        shim.wait()


def test_a_shim_whose_start_job_fails_exits_rather_than_hanging(own_pachd: PachdProcess) -> None:
    # No job credential: StartJob is refused, and the shim must end (non-zero) for its pod to be replaced.
    shim = subprocess.run([sys.executable, "-m", "shim.main", "some-job"], capture_output=True, timeout=TIMEOUT,
                          env={"PATH": os.environ.get("PATH", ""), "PACHD_ADDRESS": own_pachd.address})
    assert shim.returncode not in (0, None)
