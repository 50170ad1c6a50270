"""The supervisor over a real KV (SQLite), with a controller and a driver that only
record what they were asked to run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pachd.pps import keys
from pachd.pps.jobs import Jobs
from pachd.pps.ownership import Ownership
from pachd.pps.specs import JobInput, JobRecord, Parallelism, PipelineInput, PipelineRecord, Transform, encode
from pachd.pps.supervisor import Supervisor
from pachd.storage.kv import Delete, Put
from pachd.storage.sqlite import SqliteKV
from tests.support.wait import async_wait_until

TRANSFORM = Transform(cmd=("sleep", "60"))


class Recorder:
    """A controller and a driver both: each run waits until cancelled; `runs` counts them."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.running: set[str] = set()

    async def run(self, name: str) -> None:
        await self._until_cancelled(f"pipeline {name}")

    async def drive(self, job_id: str) -> None:
        await self._until_cancelled(f"job {job_id}")

    async def _until_cancelled(self, what: str) -> None:
        self.runs.append(what)
        self.running.add(what)
        try:
            await asyncio.Event().wait()
        finally:
            self.running.discard(what)


@pytest.fixture
async def kv(tmp_path: Path) -> AsyncIterator[SqliteKV]:
    store = await SqliteKV.open(tmp_path / "meta.db")
    yield store
    await store.close()


async def put_pipeline(kv: SqliteKV, name: str) -> None:
    record = PipelineRecord(name, TRANSFORM, Parallelism(constant=1), (PipelineInput("data"),), 1.0)
    await kv.txn([], [Put(keys.pipeline(name), encode(record))])


async def test_the_jobs_of_a_deleted_pipeline_are_not_driven_again_as_jobs_made_by_hand(kv: SqliteKV) -> None:
    """Deleting a pipeline drops its controller and its jobs' drivers; its unfinished job
    (which the deletion goes on to stop) is not taken up again as if made by hand."""
    recorder = Recorder()
    supervisor = Supervisor(kv=kv, controller=recorder, driver=recorder,  # type: ignore[arg-type]
                            ownership=Ownership(kv=kv, replica="replica-1", ttl=30))
    job = JobRecord("j1", "one", 1, TRANSFORM, Parallelism(constant=1), (JobInput("data", "master/0"),), "one", 1.0)
    await put_pipeline(kv, "one")
    await Jobs(kv=kv, pfs=None).create(job)  # type: ignore[arg-type]  # records only: no PFS needed
    await supervisor.start()
    try:
        await async_wait_until(lambda: _now("job j1" in recorder.running), what="the job's driver")
        await kv.txn([], [Delete(keys.pipeline("one"))])  # as delete-pipeline does first
        await async_wait_until(lambda: _now("pipeline one" not in recorder.running), what="the pipeline dropped")
        await put_pipeline(kv, "two")  # the supervisor claims again: by then it has acted on the deletion
        await async_wait_until(lambda: _now("pipeline two" in recorder.running), what="the next claim")
        assert recorder.runs.count("job j1") == 1 and "job j1" not in recorder.running
    finally:
        await supervisor.close()


async def test_a_job_made_by_hand_for_a_pipeline_that_does_not_exist_is_driven(kv: SqliteKV) -> None:
    """v1.2 let create-job name a pipeline that does not exist: such a job is driven."""
    recorder = Recorder()
    supervisor = Supervisor(kv=kv, controller=recorder, driver=recorder,  # type: ignore[arg-type]
                            ownership=Ownership(kv=kv, replica="replica-1", ttl=30))
    job = JobRecord("j2", "nowhere", 0, TRANSFORM, Parallelism(constant=1), (), "nowhere", 1.0)
    await Jobs(kv=kv, pfs=None).create(job)  # type: ignore[arg-type]
    await supervisor.start()
    try:
        await async_wait_until(lambda: _now("job j2" in recorder.running), what="the job's driver")
    finally:
        await supervisor.close()


async def _now(value: bool) -> bool:
    return value
