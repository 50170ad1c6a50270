"""The pipeline controller: turns new input commits into jobs.

Every finished (not archived, not cancelled) commit on an input repo triggers
at most one job, on input commits whose provenance agrees (consistency.py):
with an input made from another input, each commit is paired with the output
made from that very commit, never an older one; an unrelated input takes its
newest commit finished by then. A trigger whose set is not complete yet makes
no job; the commit that completes the set triggers it. The job's parent is
the pipeline's previous job, when that job's inputs allow it (an input that
is not incremental must be the same commit); otherwise the job starts a fresh
output lineage.

Each job is created in one transaction with its trigger mark and the new
head, guarded by the pipeline record's revision: a restarted controller skips
commits already triggered, and a stopped or updated pipeline creates nothing.
The controller reads its inputs' history once when it starts, then follows
only the changes (PFS's commit feed), so a wake-up costs what is new.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from bisect import insort
from collections.abc import Callable, Sequence

from pachd.pfs import Pfs
from pachd.pfs.records import CommitKey, CommitRecord
from pachd.pps import consistency, keys
from pachd.pps.jobs import Jobs
from pachd.pps.specs import (
    Incremental,
    JobInput,
    JobRecord,
    PipelineRecord,
    PipelineState,
    Transform,
    decode_pipeline,
    encode,
)
from pachd.storage.kv import KV, Compare, Op, Put
from pachd.storage.watching import Changes, watching

logger = logging.getLogger(__name__)


def job_id(pipeline: PipelineRecord, inputs: tuple[JobInput, ...]) -> str:
    """Deterministic: the same pipeline version on the same inputs is the same job."""
    text = f"{pipeline.name}\n{pipeline.version}\n" + "\n".join(f"{i.repo}/{i.commit}" for i in inputs)
    return hashlib.md5(text.encode()).hexdigest()


def named_job_id(pipeline: str, transform: Transform, inputs: tuple[JobInput, ...]) -> str:
    """A job made by hand for a pipeline name that has no pipeline: the same request is the same job."""
    text = f"{pipeline}\n{transform!r}\n" + "\n".join(f"{i.repo}/{i.commit}" for i in inputs)
    return hashlib.md5(text.encode()).hexdigest()


def is_parental(inputs: tuple[JobInput, ...], parent: JobRecord) -> bool:
    """Whether a job on `inputs` may build on `parent`'s output."""
    before = {i.repo: i.commit for i in parent.inputs}
    if set(before) != {i.repo for i in inputs}:
        return False
    return all(i.method.incremental is not Incremental.NONE or before[i.repo] == i.commit for i in inputs)


class _Inputs:
    """The usable commits of a pipeline's inputs, kept current from the commit feed."""

    def __init__(self, repos: list[str], triggered: set[tuple[str, str]]) -> None:
        self.ready: dict[str, list[CommitRecord]] = {r: [] for r in repos}
        self.upstream: dict[str, frozenset[str]] = {r: frozenset({r}) for r in repos}
        self._triggered = triggered
        self._pending: dict[CommitKey, CommitRecord] = {}
        self._usable: set[CommitKey] = set()  # the commits in `ready`

    def apply(self, written: Sequence[CommitRecord], deleted: Sequence[CommitKey] = ()) -> None:
        for key in deleted:
            self._drop(key)
        for commit in written:
            if commit.repo not in self.ready:
                continue
            self._drop(commit.key)
            if not _usable(commit):
                continue
            insort(self.ready[commit.repo], commit, key=consistency.order)
            self._usable.add(commit.key)
            self.upstream[commit.repo] |= {k[0] for k in commit.provenance}
            if (commit.repo, commit.id) not in self._triggered:
                self._pending[commit.key] = commit

    def _drop(self, key: CommitKey) -> None:
        self._pending.pop(key, None)
        if key not in self._usable:
            return
        self._usable.discard(key)
        commits = self.ready[key[0]]
        for k, commit in enumerate(commits):
            if commit.key == key:
                del commits[k]
                break

    def pending(self) -> list[CommitRecord]:
        """The commits not yet handled, in the order they finished."""
        return sorted(self._pending.values(), key=lambda c: (c.finished or 0.0, c.repo, c.clock))

    def handled(self, commit: CommitRecord) -> None:
        self._triggered.add((commit.repo, commit.id))
        self._pending.pop(commit.key, None)


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
            if found is None or (pipeline := decode_pipeline(found.value)).deleting:
                return  # deleted, or being deleted by its owner's supervisor
            revision = found.mod_revision
            wanted = PipelineState.STOPPED if pipeline.stopped else (
                PipelineState.RUNNING if pipeline.inputs else PipelineState.IDLE)
            if pipeline.state is not wanted:
                await self._set_state(name, wanted)
                continue
            async with watching(self._kv, [keys.pipeline(name)], seen + 1) as changes:
                if wanted is PipelineState.RUNNING:
                    await self._follow_inputs(pipeline, revision, changes)
                else:
                    await changes.next()

    async def _follow_inputs(self, pipeline: PipelineRecord, revision: int, changes: Changes) -> None:
        """Makes jobs as input commits finish, until the pipeline's record changes."""
        repos = [i.repo for i in pipeline.inputs]
        async with self._pfs.feeds.follow(repos) as feed:
            marks = await self._kv.range(keys.triggers(pipeline.name, pipeline.version))
            inputs = _Inputs(repos, {keys.trigger_commit(kv.key) for kv in marks.kvs})
            inputs.apply(feed.initial)
            changed = asyncio.ensure_future(changes.next())
            try:
                while await self._create_jobs(pipeline, revision, inputs):
                    news = asyncio.ensure_future(feed.next())
                    await asyncio.wait([changed, news], return_when=asyncio.FIRST_COMPLETED)
                    if changed.done():
                        news.cancel()
                        await asyncio.gather(news, return_exceptions=True)
                        changed.result()  # a failed watch raises here
                        return
                    batch = news.result()
                    inputs.apply(batch.written, batch.deleted)
            finally:
                changed.cancel()
                await asyncio.gather(changed, return_exceptions=True)

    async def _set_state(self, name: str, state: PipelineState, error: str = "") -> None:
        found = await self._kv.get(keys.pipeline(name))
        if found is None:
            return
        updated = dataclasses.replace(decode_pipeline(found.value), state=state, recent_error=error)
        await self._kv.txn([Compare(found.key, found.mod_revision)], [Put(found.key, encode(updated))])

    async def _create_jobs(self, pipeline: PipelineRecord, revision: int, inputs: _Inputs) -> bool:
        """Handles every pending trigger; False if the pipeline changed meanwhile."""
        for commit in inputs.pending():
            if not await self._create_job(pipeline, revision, commit, inputs):
                return False  # the pipeline changed meanwhile; the caller re-reads it
            inputs.handled(commit)
        return True

    async def _create_job(self, pipeline: PipelineRecord, revision: int, trigger: CommitRecord, inputs: _Inputs) -> bool:
        repos = [i.repo for i in pipeline.inputs]
        chosen = consistency.choose(trigger, repos, inputs.ready, inputs.upstream)
        if chosen is None:
            return await self._mark(pipeline, revision, trigger, "")  # an input has no (agreeing) data yet
        job_inputs = tuple(JobInput(given.repo, commit.id, given.method, given.run_empty)
                           for given, commit in zip(pipeline.inputs, chosen))
        head = await self._kv.get(keys.head(pipeline.name))
        parent = ""
        if head is not None:
            previous = (await self._jobs.get(head.value.decode()))[0]
            if previous.pipeline_version == pipeline.version and is_parental(job_inputs, previous):
                parent = previous.id
        identity = job_id(pipeline, job_inputs)
        if await self._kv.get(keys.job(identity)) is not None:  # another trigger led to the same inputs
            return await self._mark(pipeline, revision, trigger, identity)
        now = self._now()
        job = JobRecord(
            id=identity, pipeline=pipeline.name, pipeline_version=pipeline.version,
            transform=pipeline.transform, parallelism=pipeline.parallelism, inputs=job_inputs,
            output_repo=pipeline.name, created=now, parent=parent, started=now,
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
