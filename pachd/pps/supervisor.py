"""The tasks that drive pipelines and jobs, on the replica that owns them.

For each pipeline this replica owns (see ownership.py) it runs the pipeline's
controller and a driver for each of its unfinished jobs (also jobs made on
other replicas, e.g. by run-pipeline); for each hand-made job it owns, that
job's driver. Every task is recorded by name so it can be cancelled and
awaited. Ownership is re-examined whenever pipelines or owners change; a
replica whose lease is lost drops everything and starts over with a new one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from pachd.errors import PachError, StorageError
from pachd.pps import keys
from pachd.pps.controller import PipelineController
from pachd.pps.driver import JobDriver
from pachd.pps.ownership import Ownership
from pachd.pps.pipelines import chain_depth
from pachd.pps.specs import PipelineState, decode_job, decode_pipeline, encode
from pachd.storage.kv import KV, Compare, EventType, Put
from pachd.storage.watching import watching

logger = logging.getLogger(__name__)

RESTART_DELAYS = (0.5, 1, 2, 5, 10, 30)


def job_owner(job_id: str) -> str:
    """The owner key of a job made by hand (a pipeline's jobs go with their pipeline)."""
    return f"job:{job_id}"


class Supervisor:
    def __init__(self, *, kv: KV, controller: PipelineController, driver: JobDriver, ownership: Ownership,
                 finish_delete: Callable[[str], Awaitable[None]],
                 chained: Callable[[int], None] = lambda depth: None) -> None:
        """`finish_delete(name)` ends what delete-pipeline began (Pipelines.finish_delete);
        `chained(depth)` is told the deepest chain of pipelines whenever pipelines change."""
        self._chained = chained
        self._finish_delete = finish_delete
        self._kv = kv
        self._controller = controller
        self._driver = driver
        self.ownership = ownership
        self._pipelines: dict[str, asyncio.Task[None]] = {}  # its controller's, or its deletion's
        self._deleting: set[str] = set()  # pipelines whose task is their deletion
        self._drivers: dict[str, tuple[str, asyncio.Task[None]]] = {}  # job -> (owner, task)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.ownership.start()
        self._task = asyncio.create_task(self._supervise(), name="pps-supervisor")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._pipelines.values()) if t]
        tasks += [task for _, task in self._drivers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.ownership.close()

    # -- ownership ------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Follows ownership; when the lease is lost or the metadata store fails
        (etcd down), drops everything and starts over once it answers again."""
        failures = 0
        while True:
            delay = 0.0
            try:
                if self.ownership.lost.is_set():
                    fresh = Ownership(kv=self._kv, replica=self.ownership.replica, ttl=self.ownership.ttl)
                    await fresh.start()
                    self.ownership = fresh
                    logger.info("replica %s has a new lease", fresh.replica)
                await self._follow_ownership()
                failures = 0
            except StorageError as err:
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                logger.warning("pipelines paused: the metadata store failed (%s); retrying in %ss", err, delay)
            await self._drop_everything()
            await asyncio.sleep(delay)

    async def _follow_ownership(self) -> None:
        """Claims what is free whenever pipelines or owners change, until the lease is lost."""
        revision = await self._kv.revision()
        async with watching(self._kv, [keys.pipelines(), keys.owners()], revision + 1) as changes:
            while not self.ownership.lost.is_set():
                await self._claim()
                lost = asyncio.ensure_future(self.ownership.lost.wait())
                changed = asyncio.ensure_future(changes.next())
                await asyncio.wait([lost, changed], return_when=asyncio.FIRST_COMPLETED)
                for waiter in (lost, changed):
                    waiter.cancel()
                changes.drain()

    async def _claim(self) -> None:
        records = [decode_pipeline(kv.value) for kv in (await self._kv.range(keys.pipelines())).kvs]
        self._chained(chain_depth(records))
        names = {record.name for record in records}
        deleting = {record.name for record in records if record.deleting}
        for name in sorted(names):
            if name in deleting and name in self._pipelines and name not in self._deleting:
                await self._drop(name)  # its controller and its jobs' drivers end before its jobs are stopped
            task = self._pipelines.get(name)
            if (task is None or task.done()) and await self.ownership.claim(name):
                if name in deleting:
                    self._deleting.add(name)
                    task = asyncio.create_task(self._keep_running(name, self._finish_delete), name=f"delete-{name}")
                else:
                    task = asyncio.create_task(self._drive_pipeline(name), name=f"pipeline-{name}")
                task.add_done_callback(_log_failure)
                self._pipelines[name] = task
        for name in [n for n in self._pipelines if n not in names]:
            await self._drop(name)
            await self.ownership.release(name)
        for kv in (await self._kv.range(keys.jobs())).kvs:
            job = decode_job(kv.value)
            # A job may name a pipeline that does not exist (v1.2 allowed it): it is driven like a hand-made
            # one. Not so a job made for a pipeline (a version of it) that is gone: deleting the pipeline
            # stops it, and driving it meanwhile would start its pods again after they were deleted.
            orphan = job.pipeline not in names and job.pipeline_version == 0
            if (orphan or not job.pipeline) and not job.state.done and job.id not in self._drivers:
                if await self.ownership.claim(job_owner(job.id)):
                    self.launch(job.id, job_owner(job.id))

    async def _drop(self, owned: str) -> None:
        """Stops driving a pipeline (its controller or deletion, and its jobs' drivers)."""
        tasks = [self._pipelines.pop(owned)] if owned in self._pipelines else []
        self._deleting.discard(owned)
        for job, (owner, task) in list(self._drivers.items()):
            if owner == owned:
                tasks.append(task)
                del self._drivers[job]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _drop_everything(self) -> None:
        for owned in {*self._pipelines, *(owner for owner, _ in self._drivers.values())}:
            await self._drop(owned)

    # -- driving ----------------------------------------------------------------------

    def launch(self, job_id: str, owner: str) -> None:
        """Drives the job (once: a job already driven here is left alone)."""
        current = self._drivers.get(job_id)
        if current is not None and not current[1].done():
            return
        task = asyncio.create_task(self._driver.drive(job_id), name=f"job-{job_id}")
        self._drivers[job_id] = (owner, task)
        task.add_done_callback(lambda t: self._forget(job_id, t))

    def _forget(self, job_id: str, task: asyncio.Task[None]) -> None:
        current = self._drivers.get(job_id)
        if current is not None and current[1] is task:
            del self._drivers[job_id]

    async def stop_driver(self, job_id: str) -> None:
        current = self._drivers.pop(job_id, None)
        if current is not None:
            current[1].cancel()
            await asyncio.gather(current[1], return_exceptions=True)

    async def _drive_pipeline(self, name: str) -> None:
        """The pipeline's controller, and drivers for its jobs wherever they were made."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._keep_running(name, self._controller.run))
            group.create_task(self._follow_jobs(name))

    async def _follow_jobs(self, name: str) -> None:
        listing = await self._kv.range(keys.pipeline_jobs(name))
        for kv in listing.kvs:
            await self._launch_unfinished(keys.name_from_key(kv.key), name)
        async for event in self._kv.watch(keys.pipeline_jobs(name), start_revision=listing.revision + 1):
            if event.type is EventType.PUT:
                await self._launch_unfinished(keys.name_from_key(event.key), name)

    async def _launch_unfinished(self, job_id: str, owner: str) -> None:
        found = await self._kv.get(keys.job(job_id))
        if found is not None and not decode_job(found.value).state.done:
            self.launch(job_id, owner)

    async def _keep_running(self, name: str, work: Callable[[str], Awaitable[None]]) -> None:
        """Runs the pipeline's controller (or its deletion) until it returns, again after errors."""
        failures = 0
        while True:
            try:
                await work(name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - any error restarts the controller
                delay = RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)]
                failures += 1
                logger.exception("pipeline %s: %s failed; restarting in %ss", name, work.__name__, delay)
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


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("%s stopped: %r", task.get_name(), task.exception(), exc_info=task.exception())
