"""PPS: pipelines, jobs, and the tasks that drive them.

`Pps` is the API's entry point; its supervisor (supervisor.py) owns every
background task: one controller per pipeline and one driver per unfinished
job, on the replica that owns them (ownership.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

from pachd.errors import InvalidManifest, JobNotFound, PachError, PipelineNotFound, RepoNotFound
from pachd.executor.base import Executor
from pachd.pfs import Pfs
from pachd.pps import keys
from pachd.pps.controller import PipelineController, job_id, named_job_id
from pachd.pps.driver import JobDriver
from pachd.pps.failures import LAST_LINES, Failure, failure_of
from pachd.pps.jobs import Jobs
from pachd.pps.pipelines import Pipelines
from pachd.pps.pods import DEFAULT_IMAGE
from pachd.pps.ownership import Ownership
from pachd.pps.secrets import scrub, secret_values
from pachd.pps.supervisor import Supervisor, job_owner
from pachd.pps.specs import (
    JobInput,
    JobRecord,
    JobState,
    Parallelism,
    PodState,
    Transform,
    decode_job,
)
from pachd.storage.kv import KV
from pachd.storage.watching import watching

logger = logging.getLogger(__name__)

class Pps:
    def __init__(
        self, *, kv: KV, pfs: Pfs, executor: Executor, default_image: str = DEFAULT_IMAGE, replica: str = "pachd",
        lease_ttl: float = 10.0, credential: Callable[[str], str] = lambda job_id: "", images_ignored: bool = False,
    ) -> None:
        """`credential` gives the token a job's pods are handed (pachd/auth.py); `images_ignored`:
        the executor runs every pod on this machine, whatever image it names."""
        self._kv = kv
        self._images_ignored = images_ignored
        self._warned = False
        self._pfs = pfs
        self.executor = executor
        self.jobs = Jobs(kv=kv, pfs=pfs)
        self.pipelines = Pipelines(kv=kv, pfs=pfs, jobs=self.jobs, stop_job=self.stop_job, delete_job=self._delete_job,
                                   drop_output=executor.output_dropped)
        driver = JobDriver(kv=kv, pfs=pfs, jobs=self.jobs, executor=executor, default_image=default_image,
                           credential=credential)
        controller = PipelineController(kv=kv, pfs=pfs, jobs=self.jobs,
                                        launch=lambda job, pipeline: self.supervisor.launch(job, pipeline))
        self.supervisor = Supervisor(kv=kv, controller=controller, driver=driver,
                                     ownership=Ownership(kv=kv, replica=replica, ttl=lease_ttl),
                                     finish_delete=self.pipelines.finish_delete,
                                     chained=executor.reserve)

    # -- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        """Reconciles with pods left from before, then drives what this replica owns."""
        await self.executor.recover()
        await self.supervisor.start()

    async def close(self) -> None:
        """Stops every task and hands ownership over (pods keep running; start() reconciles)."""
        await self.supervisor.close()
        await self.executor.close()

    async def _delete_job(self, job: str) -> None:
        """Removes an ended job's record and its pods (and, on a cluster, their objects)."""
        await self.executor.delete(job)
        await self.jobs.delete(job)

    async def stop_job(self, job: str, reason: str) -> None:
        """Ends an unfinished job now: its pods stop, its output is cancelled."""
        await self.supervisor.stop_driver(job)
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
        identity = uuid.uuid4().hex
        resolved_inputs = []
        for given in inputs:
            try:
                canonical = (await self._pfs.commits.get(given.repo, given.commit))[0].id
            except RepoNotFound as err:
                if pipeline or parent:
                    raise
                raise RepoNotFound(f"could not create repo job_{identity}, not all provenance repos exist",
                                   hint=err.message) from err
            resolved_inputs.append(dataclasses.replace(given, commit=canonical))
        resolved = tuple(resolved_inputs)
        version = 0
        record = None
        if pipeline:
            try:
                record = (await self.pipelines.get(pipeline))[0]
            except PipelineNotFound:
                if transform is None:
                    raise
                await self._pfs.repos.get(pipeline)  # v1.2 wrote such a job's output into the repo of that name
            if record is not None:
                version = record.version
                if transform is None:
                    transform, parallelism = record.transform, record.parallelism
        if transform is None or not transform.cmd:
            raise InvalidManifest("a job needs a transform with a cmd, or a pipeline to take it from")
        if pipeline and resolved and not force:
            identity = job_id(record, resolved) if record is not None else named_job_id(pipeline, transform, resolved)
            if await self._kv.get(keys.job(identity)) is not None:
                return (await self.jobs.get(identity))[0]
        output_repo = pipeline or ((await self.jobs.get(parent))[0].output_repo if parent else f"job_{identity}")
        if not pipeline and not parent:
            await self._pfs.repos.create(output_repo, list(dict.fromkeys(i.repo for i in resolved)))
        now = time.time()
        job = JobRecord(identity, pipeline, version, transform, parallelism, resolved, output_repo, now,
                        parent=parent, started=now)
        await self.jobs.create(job)
        # A pipeline's job is driven by the replica that owns the pipeline; any other by whoever claims it.
        if record is None and await self.supervisor.ownership.claim(job_owner(job.id)):
            self.supervisor.launch(job.id, job_owner(job.id))
        return job

    def image_warning(self, image: str) -> str:
        """What to tell a client that names an image the executor will not use ("" if nothing); logged once."""
        if not image or not self._images_ignored:
            return ""
        warning = (f"image {image!r} is ignored: the local executor runs pods on pachd's machine "
                   "(use --executor docker or kubernetes to run images)")
        if not self._warned:
            self._warned = True
            logger.warning("%s; said once", warning)
        return warning

    async def logs(self, job: str) -> AsyncIterator[bytes]:
        """The job's pod logs, each line as `<pod index> | <line>`, secret values blanked out."""
        try:
            record, _ = await self.jobs.get(job)
        except JobNotFound as err:  # v1.2.3's GetLogs text differs from InspectJob's
            raise JobNotFound(f"job {job} not found", hint=err.hint) from err
        hidden = secret_values([record.transform])
        async for line in self.executor.logs(job):
            yield b"%d | %s\n" % (line.index, scrub(line.line, hidden))
        if record.state is JobState.FAILURE and record.reason:  # JobInfo has no field for why
            yield b"pachd | job failed: %s\n" % scrub(record.reason.encode(), hidden)
        elif record.state is JobState.PULLING and record.waiting:
            yield b"pachd | job waits for its image: %s\n" % scrub(record.waiting.encode(), hidden)

    async def follow_logs(self, job: str, *, poll: float = 0.5) -> AsyncIterator[bytes]:
        """Like logs(), then every new line as the pods print it, until the job has ended.

        Executors offer the logs so far, not a stream, so while the job runs
        they are read again after each change of the job or every `poll` seconds.
        """
        sent: dict[tuple[int, int], int] = {}  # (pod index, attempt) -> lines sent
        revision = await self._kv.revision()
        async with watching(self._kv, [keys.job(job)], revision + 1) as changed:
            while True:
                record, _ = await self.jobs.get(job)
                hidden = secret_values([record.transform])
                seen: dict[tuple[int, int], int] = {}
                async for line in self.executor.logs(job):
                    pod = (line.index, line.attempt)
                    seen[pod] = seen.get(pod, 0) + 1
                    if seen[pod] > sent.get(pod, 0):
                        yield b"%d | %s\n" % (line.index, scrub(line.line, hidden))
                sent.update(seen)
                if record.state.done:
                    if record.state is JobState.FAILURE and record.reason:
                        yield b"pachd | job failed: %s\n" % scrub(record.reason.encode(), hidden)
                    return
                try:
                    async with asyncio.timeout(poll):
                        await changed.next()
                except TimeoutError:
                    pass
                changed.drain()

    async def failures(self, job_ids: Sequence[str], last: int = LAST_LINES) -> list[Failure]:
        """Why each failed job among `job_ids` failed (those that did not fail are left out)."""
        found = []
        for job_id in dict.fromkeys(job_ids):
            record, _ = await self.jobs.get(job_id)
            failure = await self.failure(record, last)
            if failure is not None:
                found.append(failure)
        return found

    async def failure(self, record: JobRecord, last: int = LAST_LINES) -> Failure | None:
        """Why the job of `record` failed (None if it did not), with its failed pod's last lines."""
        return await failure_of(record, self.executor.logs(record.id), last)

    async def changes(self) -> AsyncIterator[str]:
        """What changes from now on, one word per change: "pipeline" or "job"."""
        revision = await self._kv.revision()
        async with watching(self._kv, [keys.pipelines(), keys.jobs()], revision + 1) as changed:
            while True:
                event = await changed.next()
                yield "pipeline" if event.key.startswith(keys.pipelines()) else "job"

    async def delete_all(self) -> None:
        await self.pipelines.delete_all()
        for kv in (await self._kv.range(keys.jobs())).kvs:
            job = decode_job(kv.value)
            if not job.state.done:
                await self.stop_job(job.id, "deleted by delete-all")
            await self.executor.delete(job.id)
        await self._kv.delete_prefix(keys.ROOT)

