"""PPS: pipelines, jobs, and the tasks that drive them.

`Pps` owns every background task: one controller per pipeline and one driver
per unfinished job, each recorded by name or ID so it can be cancelled and
awaited; a supervisor starts and stops controllers as pipelines come and go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from pachd.errors import InvalidManifest, PachError
from pachd.executor.base import Executor
from pachd.pfs import Pfs
from pachd.pps import keys
from pachd.pps.controller import PipelineController, job_id
from pachd.pps.driver import JobDriver
from pachd.pps.jobs import Jobs
from pachd.pps.pipelines import Pipelines
from pachd.pps.pods import DEFAULT_IMAGE
from pachd.pps.secrets import scrub, secret_values
from pachd.pps.specs import (
    JobInput,
    JobRecord,
    JobState,
    Parallelism,
    PipelineState,
    PodState,
    Transform,
    decode_job,
    decode_pipeline,
    encode,
)
from pachd.storage.kv import KV, Compare, EventType, Put

logger = logging.getLogger(__name__)

RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)


class Pps:
    def __init__(self, *, kv: KV, pfs: Pfs, executor: Executor, default_image: str = DEFAULT_IMAGE) -> None:
        self._kv = kv
        self._pfs = pfs
        self.executor = executor
        self.jobs = Jobs(kv=kv, pfs=pfs)
        self.pipelines = Pipelines(kv=kv, pfs=pfs, jobs=self.jobs, stop_job=self.stop_job)
        self._driver = JobDriver(kv=kv, pfs=pfs, jobs=self.jobs, executor=executor, default_image=default_image)
        self._controller = PipelineController(kv=kv, pfs=pfs, jobs=self.jobs, launch=self.launch)
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._controllers: dict[str, asyncio.Task[None]] = {}
        self._supervisor: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Reconciles with pods left from before, resumes unfinished jobs, drives pipelines."""
        await self.executor.recover()
        for kv in (await self._kv.range(keys.jobs())).kvs:
            if not decode_job(kv.value).state.done:
                self.launch(kv.key.rsplit("/", 1)[1])
        self._supervisor = asyncio.create_task(self._supervise(), name="pps-supervisor")

    async def close(self) -> None:
        """Stops every task (pods keep running; the next start() reconciles)."""
        tasks = [t for t in (self._supervisor, *self._controllers.values(), *self._drivers.values()) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.executor.close()

    async def _supervise(self) -> None:
        listing = await self._kv.range(keys.pipelines())
        for kv in listing.kvs:
            self._ensure_controller(kv.key.rsplit("/", 1)[1])
        async for event in self._kv.watch(keys.pipelines(), start_revision=listing.revision + 1):
            name = event.key.rsplit("/", 1)[1]
            if event.type is EventType.PUT:
                self._ensure_controller(name)

    def _ensure_controller(self, name: str) -> None:
        task = self._controllers.get(name)
        if task is None or task.done():
            self._controllers[name] = asyncio.create_task(self._run_controller(name), name=f"pipeline-{name}")

    async def _run_controller(self, name: str) -> None:
        """Runs the pipeline's controller, restarting it after errors, until the pipeline is gone."""
        failures = 0
        while True:
            try:
                await self._controller.run(name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any error restarts the controller
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                logger.exception("pipeline %s: controller failed; restarting in %ss", name, delay)
                try:
                    await self._note_error(name, str(err))
                except PachError:
                    pass
                await asyncio.sleep(delay)

    async def _note_error(self, name: str, error: str) -> None:
        found = await self._kv.get(keys.pipeline(name))
        if found is None:
            return
        updated = dataclasses.replace(decode_pipeline(found.value), state=PipelineState.RESTARTING,
                                      recent_error=error[:500])
        await self._kv.txn([Compare(found.key, found.mod_revision)], [Put(found.key, encode(updated))])

    def launch(self, job: str) -> None:
        """Drives the job (once: a job already driven is left alone)."""
        task = self._drivers.get(job)
        if task is not None and not task.done():
            return
        task = asyncio.create_task(self._driver.drive(job), name=f"job-{job}")
        self._drivers[job] = task
        task.add_done_callback(lambda t: self._drivers.pop(job, None) if self._drivers.get(job) is t else None)

    async def stop_job(self, job: str, reason: str) -> None:
        """Ends an unfinished job now: its pods stop, its output is cancelled."""
        task = self._drivers.pop(job, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.executor.delete(job)
        record, _ = await self.jobs.get(job)
        for pod in record.pods:
            if pod.state is PodState.RUNNING:
                await self.jobs.abandon(record.output_repo, pod.commit)
        if record.output_commit:
            try:
                await self._pfs.commits.finish(record.output_repo, record.output_commit, cancel=True)
            except PachError:
                pass
        await self.jobs.update(job, lambda j: j if j.state.done else dataclasses.replace(
            j, state=JobState.FAILURE, finished=time.time(), reason=reason))

    # -- the API beyond pipelines and jobs' records -------------------------------

    async def create_job(
        self, *, transform: Transform | None, parallelism: Parallelism, inputs: Sequence[JobInput],
        pipeline: str = "", parent: str = "", force: bool = False,
    ) -> JobRecord:
        """A job made by hand (create-job, run-pipeline), started at once.

        With a pipeline and no transform, the pipeline's transform and
        parallelism are used, and the output goes to the pipeline's repo.
        """
        resolved_inputs = []
        for given in inputs:
            canonical = (await self._pfs.commits.get(given.repo, given.commit))[0].id
            resolved_inputs.append(dataclasses.replace(given, commit=canonical))
        resolved = tuple(resolved_inputs)
        identity = uuid.uuid4().hex
        version = 0
        if pipeline:
            record, _ = await self.pipelines.get(pipeline)
            version = record.version
            if transform is None:
                transform, parallelism = record.transform, record.parallelism
            if resolved and not force:
                identity = job_id(record, resolved)
                if await self._kv.get(keys.job(identity)) is not None:
                    return (await self.jobs.get(identity))[0]
        if transform is None or not transform.cmd:
            raise InvalidManifest("a job needs a transform with a cmd, or a pipeline to take it from")
        output_repo = pipeline or ((await self.jobs.get(parent))[0].output_repo if parent else f"job_{identity}")
        if not pipeline and not parent:
            await self._pfs.repos.create(output_repo, list(dict.fromkeys(i.repo for i in resolved)))
        job = JobRecord(identity, pipeline, version, transform, parallelism, resolved, output_repo, time.time(),
                        parent=parent)
        await self.jobs.create(job)
        self.launch(job.id)
        return job

    async def logs(self, job: str) -> AsyncIterator[bytes]:
        """The job's pod logs, each line as `<pod index> | <line>`, secret values blanked out."""
        record, _ = await self.jobs.get(job)
        hidden = secret_values([record.transform])
        async for line in self.executor.logs(job):
            yield b"%d | %s\n" % (line.index, scrub(line.line, hidden))

    async def delete_all(self) -> None:
        await self.pipelines.delete_all()
        for kv in (await self._kv.range(keys.jobs())).kvs:
            job = decode_job(kv.value)
            if not job.state.done:
                await self.stop_job(job.id, "deleted by delete-all")
            await self.executor.delete(job.id)
        await self._kv.delete_prefix(keys.ROOT)

