"""The local executor's handling of a pod's end (pachd/executor/local.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pachd.executor import local
from pachd.executor.base import JobSpec, PodPhase
from pachd.executor.local import LocalExecutor

TIMEOUT = 120


async def test_a_crashed_pod_is_reported_and_replaced_before_its_files_are_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Removing a pod's files runs at the lowest priority: on a busy machine it may wait for long.
    removals: dict[Path, asyncio.Task[object] | None] = {}
    released = asyncio.Event()

    async def held(directory: Path) -> None:
        removals[directory] = asyncio.current_task()
        await released.wait()

    monkeypatch.setattr(local, "remove_pod_files", held)
    executor = LocalExecutor(root=tmp_path / "pods", pachd_address="127.0.0.1:1", shim="/bin/false",
                             base_env={"PATH": "/usr/bin:/bin"})
    await executor.start(JobSpec("job", "", 1, (0,), "", ("job-shim", "job"), {}, max_restarts=1))
    phases = []

    async def follow() -> None:
        async for event in executor.events("job"):
            phases.append(event.phase)
            if event.phase is PodPhase.GAVE_UP:
                return

    try:
        await asyncio.wait_for(follow(), TIMEOUT)
        assert phases == [PodPhase.STARTED, PodPhase.CRASHED, PodPhase.STARTED, PodPhase.GAVE_UP]
        assert tmp_path / "pods" / "job" / "job-0-0" / "pfs" in removals  # asked for, still under way
    finally:
        released.set()
        await asyncio.gather(*(task for task in removals.values() if task is not None))
        await executor.delete("job")
