"""The pipeline controller: turns new input commits into jobs.

Every finished (not archived, not cancelled) commit on an input repo triggers
one job, paired with the newest commits of the other inputs that had finished
by then. The job's parent is the pipeline's previous job, when that job's
inputs allow it (an input that is not incremental must be the same commit);
otherwise the job starts a fresh output lineage.

Each job is created in one transaction with its trigger mark and the new
head, guarded by the pipeline record's revision: a restarted controller skips
commits already triggered, and a stopped or updated pipeline creates nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from collections.abc import Callable

from pachd.pfs import Pfs
from pachd.pfs import keys as pfs_keys
from pachd.pfs.records import CommitRecord
from pachd.pps import keys
from pachd.pps.jobs import Jobs
from pachd.pps.specs import (
    Incremental,
    JobInput,
    JobRecord,
    PipelineRecord,
    PipelineState,
    decode_pipeline,
    encode,
)
from pachd.storage.kv import KV, Compare, Op, Put
from pachd.storage.watching import watching

logger = logging.getLogger(__name__)


def job_id(pipeline: PipelineRecord, inputs: tuple[JobInput, ...]) -> str:
    """Deterministic: the same pipeline version on the same inputs is the same job."""
    text = f"{pipeline.name}\n{pipeline.version}\n" + "\n".join(f"{i.repo}/{i.commit}" for i in inputs)
    return hashlib.md5(text.encode()).hexdigest()


def is_parental(inputs: tuple[JobInput, ...], parent: JobRecord) -> bool:
    """Whether a job on `inputs` may build on `parent`'s output."""
    before = {i.repo: i.commit for i in parent.inputs}
    if set(before) != {i.repo for i in inputs}:
        return False
    return all(i.method.incremental is not Incremental.NONE or before[i.repo] == i.commit for i in inputs)


class PipelineController:
    def __init__(
        self, *, kv: KV, pfs: Pfs, jobs: Jobs, launch: Callable[[str, str], None],
        now: Callable[[], float] = time.time,
    ) -> None:
        """`launch(job, pipeline)` starts driving a job the controller made."""
        self._kv = kv
        self._pfs = pfs
        self._jobs = jobs
        self._launch = launch
        self._now = now

    async def run(self, name: str) -> None:
        """Drives the pipeline until its record is deleted (or the task is cancelled)."""
        while True:
            # The revision before the read: no change after it can slip past the watch below.
            seen = await self._kv.revision()
            found = await self._kv.get(keys.pipeline(name))
            if found is None:
                return
            pipeline, revision = decode_pipeline(found.value), found.mod_revision
            wanted = PipelineState.STOPPED if pipeline.stopped else (
                PipelineState.RUNNING if pipeline.inputs else PipelineState.IDLE)
            if pipeline.state is not wanted:
                await self._set_state(name, wanted)
                continue
            prefixes = [keys.pipeline(name)]
            if wanted is PipelineState.RUNNING:
                prefixes += [pfs_keys.commits(i.repo) for i in pipeline.inputs]
            async with watching(self._kv, prefixes, seen + 1) as changes:
                while True:
                    if wanted is PipelineState.RUNNING:
                        await self._create_jobs(pipeline, revision)
                    events = [await changes.next(), *changes.drain()]
                    if any(e.key == keys.pipeline(name) for e in events):
                        break

    async def _set_state(self, name: str, state: PipelineState, error: str = "") -> None:
        found = await self._kv.get(keys.pipeline(name))
        if found is None:
            return
        updated = dataclasses.replace(decode_pipeline(found.value), state=state, recent_error=error)
        await self._kv.txn([Compare(found.key, found.mod_revision)], [Put(found.key, encode(updated))])

    async def _create_jobs(self, pipeline: PipelineRecord, revision: int) -> None:
        triggered = {keys.trigger_commit(kv.key)
                     for kv in (await self._kv.range(keys.triggers(pipeline.name, pipeline.version))).kvs}
        ready = {i.repo: [c for c in await self._pfs.commits.repo_commits(i.repo) if _usable(c)]
                 for i in pipeline.inputs}
        new = sorted((c for commits in ready.values() for c in commits if (c.repo, c.id) not in triggered),
                     key=lambda c: (c.finished or 0.0, c.repo, c.clock))
        for commit in new:
            if not await self._create_job(pipeline, revision, commit, ready):
                return  # the pipeline changed meanwhile; the caller re-reads it

    async def _create_job(
        self, pipeline: PipelineRecord, revision: int, trigger: CommitRecord, ready: dict[str, list[CommitRecord]]
    ) -> bool:
        inputs = []
        for given in pipeline.inputs:
            if given.repo == trigger.repo:
                commit: CommitRecord | None = trigger
            else:
                earlier = [c for c in ready[given.repo] if (c.finished or 0.0) <= (trigger.finished or 0.0)]
                commit = max(earlier, key=lambda c: (c.finished or 0.0, c.clock), default=None)
            if commit is None:
                return await self._mark(pipeline, revision, trigger, "")  # an input has no data yet
            inputs.append(JobInput(given.repo, commit.id, given.method, given.run_empty))
        job_inputs = tuple(inputs)
        head = await self._kv.get(keys.head(pipeline.name))
        parent = ""
        if head is not None:
            previous = (await self._jobs.get(head.value.decode()))[0]
            if previous.pipeline_version == pipeline.version and is_parental(job_inputs, previous):
                parent = previous.id
        identity = job_id(pipeline, job_inputs)
        if await self._kv.get(keys.job(identity)) is not None:  # another trigger led to the same inputs
            return await self._mark(pipeline, revision, trigger, identity)
        job = JobRecord(
            id=identity, pipeline=pipeline.name, pipeline_version=pipeline.version,
            transform=pipeline.transform, parallelism=pipeline.parallelism, inputs=job_inputs,
            output_repo=pipeline.name, created=self._now(), parent=parent,
        )
        ops: list[Op] = [*self._jobs.create_ops(job), Put(keys.head(pipeline.name), job.id.encode())]
        guards = [Compare(keys.head(pipeline.name), head.mod_revision if head else 0), Compare(keys.job(job.id), 0)]
        if not await self._mark(pipeline, revision, trigger, job.id, ops, guards):
            return False
        logger.info("pipeline %s: job %s for %s/%s", pipeline.name, job.id, trigger.repo, trigger.id)
        self._launch(job.id, pipeline.name)
        return True

    async def _mark(
        self, pipeline: PipelineRecord, revision: int, trigger: CommitRecord, job: str,
        ops: list[Op] | None = None, guards: list[Compare] | None = None,
    ) -> bool:
        """Records that `trigger` was handled (by `job`, or by nothing), with `ops`, atomically."""
        key = keys.trigger(pipeline.name, pipeline.version, trigger.repo, trigger.id)
        result = await self._kv.txn(
            [Compare(keys.pipeline(pipeline.name), revision), Compare(key, 0), *(guards or [])],
            [Put(key, job.encode()), *(ops or [])],
        )
        return result.succeeded


def _usable(commit: CommitRecord) -> bool:
    return not commit.is_open and not commit.archived and not commit.cancelled
