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
    """A controller and a driver both (each run waits until cancelled; `runs` counts them), and
    the deletion of a pipeline (which records what still ran)."""

    def __init__(self, kv: SqliteKV | None = None) -> None:
        self._kv = kv
        self.runs: list[str] = []
        self.running: set[str] = set()
        self.deleted_while_running: set[str] = set()  # what still ran when finish_delete was called

    async def run(self, name: str) -> None:
        await self._until_cancelled(f"pipeline {name}")

    async def drive(self, job_id: str) -> None:
        await self._until_cancelled(f"job {job_id}")

    async def finish_delete(self, name: str) -> None:
        self.runs.append(f"delete {name}")
        self.deleted_while_running = set(self.running)
        if self._kv is not None:
            await self._kv.txn([], [Delete(keys.pipeline(name))])

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


async def put_pipeline(kv: SqliteKV, name: str, deleting: bool = False) -> None:
    record = PipelineRecord(name, TRANSFORM, Parallelism(constant=1), (PipelineInput("data"),), 1.0,
                            deleting=deleting)
    await kv.txn([], [Put(keys.pipeline(name), encode(record))])


async def test_the_jobs_of_a_deleted_pipeline_are_not_driven_again_as_jobs_made_by_hand(kv: SqliteKV) -> None:
    """Deleting a pipeline drops its controller and its jobs' drivers; its unfinished job
    (which the deletion goes on to stop) is not taken up again as if made by hand."""
    recorder = Recorder()
    supervisor = Supervisor(kv=kv, controller=recorder, driver=recorder,  # type: ignore[arg-type]
                            ownership=Ownership(kv=kv, replica="replica-1", ttl=30),
                            finish_delete=recorder.finish_delete)
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
                            ownership=Ownership(kv=kv, replica="replica-1", ttl=30),
                            finish_delete=recorder.finish_delete)
    job = JobRecord("j2", "nowhere", 0, TRANSFORM, Parallelism(constant=1), (), "nowhere", 1.0)
    await Jobs(kv=kv, pfs=None).create(job)  # type: ignore[arg-type]
    await supervisor.start()
    try:
        await async_wait_until(lambda: _now("job j2" in recorder.running), what="the job's driver")
    finally:
        await supervisor.close()


async def test_a_pipeline_marked_for_deletion_is_deleted_by_its_owner_once_its_tasks_have_ended(
        kv: SqliteKV) -> None:
    """delete-pipeline marks the record; the owner then stops the pipeline's controller and its
    jobs' drivers before it finishes the deletion, and after a restart (a record found marked)
    it finishes it without driving anything first."""
    recorder = Recorder()  # leaves the record: the restarted supervisor below finds it
    supervisor = Supervisor(kv=kv, controller=recorder, driver=recorder,  # type: ignore[arg-type]
                            ownership=Ownership(kv=kv, replica="replica-1", ttl=30),
                            finish_delete=recorder.finish_delete)
    job = JobRecord("j3", "three", 1, TRANSFORM, Parallelism(constant=1), (JobInput("data", "master/0"),), "three", 1.0)
    await put_pipeline(kv, "three")
    await Jobs(kv=kv, pfs=None).create(job)  # type: ignore[arg-type]
    await supervisor.start()
    try:
        await async_wait_until(lambda: _now("job j3" in recorder.running), what="the job's driver")
        await put_pipeline(kv, "three", deleting=True)
        await async_wait_until(lambda: _now("delete three" in recorder.runs), what="the deletion")
        assert recorder.deleted_while_running == set()
    finally:
        await supervisor.close()
    restarted = Recorder(kv)
    supervisor = Supervisor(kv=kv, controller=restarted, driver=restarted,  # type: ignore[arg-type]
                            ownership=Ownership(kv=kv, replica="replica-2", ttl=30),
                            finish_delete=restarted.finish_delete)
    await supervisor.start()
    try:
        await async_wait_until(lambda: _now("delete three" in restarted.runs), what="the deletion, again")
        assert restarted.runs == ["delete three"]
    finally:
        await supervisor.close()


async def _now(value: bool) -> bool:
    return value
