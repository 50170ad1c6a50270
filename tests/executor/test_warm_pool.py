"""How many warm pods the pool keeps, and at what priority a job waits for one (pachd/executor/warm.py)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachd.executor.namespace import Sandbox
from pachd.executor.warm import WARM_DIR, WAITING_NICE, WarmPool
from tests.executor.test_warm import TIMEOUT, _pachd, _warm_pids
from tests.support.beacon import Beacon
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import async_wait_until, wait_until


def test_the_pool_keeps_a_pod_for_each_stage_of_the_deepest_chain(tmp_path: Path) -> None:
    server = _pachd(tmp_path, 2)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            previous = "data"
            for n in range(1, 6):
                client.create_pipeline(pipeline(f"stage{n}", f"cp /pfs/{previous}/* /pfs/out/", [(previous, MAP)]))
                previous = f"stage{n}"
            with client.commit("data") as c:
                client.put_file(("data", c.id), "f", b"x\n")
            client.flush_commit([("data", c.id)], to_repos=["stage5"], timeout=TIMEOUT)
            # --warm-pods 2, but a commit sets off 5 jobs one after another: 5 pods wait for them.
            wait_until(lambda: len(_warm_pids(server)) == 5, timeout=TIMEOUT, what="five idle warm pods")
    finally:
        server.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="warm pods run at a lower priority only when pachd is root")
async def test_a_pod_a_job_waits_for_warms_up_at_the_jobs_priority(tmp_path: Path) -> None:
    with Beacon() as beacon:
        # Says ready (on its stdin, a socket) only once the test opens the gate, then reads its assignment.
        script = f"{beacon.command('gate-warm')} >/dev/null; echo ready >&0; read assignment"
        pool = WarmPool(root=tmp_path, size=1, argv=["/bin/sh", "-c", script], env={"PATH": "/usr/bin:/bin"},
                        sandbox=Sandbox())
        pool.fill()
        try:
            await async_wait_until(lambda: _idle_pod_pid(tmp_path), timeout=TIMEOUT, what="a warm pod")
            pid = await _idle_pod_pid(tmp_path)
            assert os.getpriority(os.PRIO_PGRP, pid) == WAITING_NICE
            taking = asyncio.create_task(pool.take())
            await async_wait_until(lambda: _priority(pid, 0), timeout=TIMEOUT, what="the job's priority")
            assert not taking.done()  # still warming up: the job waits for it at the normal priority
            beacon.open("gate-warm")
            pod = await asyncio.wait_for(taking, TIMEOUT)
            assert pod is not None and pod.process.pid == pid
            await pod.discard()
        finally:
            await pool.close()


async def _idle_pod_pid(root: Path) -> int:
    for pid_file in (root / WARM_DIR).glob("*/pid"):
        return int(pid_file.read_text().split()[0])
    return 0


async def _priority(pid: int, nice: int) -> bool:
    return os.getpriority(os.PRIO_PGRP, pid) == nice
