"""Pipelines: create, update, inspect, list, delete, start and stop.

A pipeline's output repo has its name and the input repos as provenance. The
pipeline's controller (controller.py) reacts to every change of its record.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pachd.errors import (
    InvalidManifest,
    PachError,
    PipelineExists,
    PipelineNotFound,
    RepoExists,
)
from pachd.pfs import Pfs
from pachd.pps import keys
from pachd.pps.jobs import Jobs
from pachd.pps.specs import (
    JobState,
    Parallelism,
    PipelineInput,
    PipelineRecord,
    PipelineState,
    Transform,
    decode_pipeline,
    encode,
)
from pachd.storage.kv import KV, Compare, Delete, DeletePrefix, Put
from pachd.storage.watching import wait_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PipelineInfo:
    record: PipelineRecord
    job_counts: dict[JobState, int]


def chain_depth(pipelines: Sequence[PipelineRecord]) -> int:
    """How many jobs one commit can set off one after another: the longest chain of
    running pipelines, each reading the output of the one before (0: none)."""
    inputs = {p.name: [i.repo for i in p.inputs] for p in pipelines if not p.stopped}
    depths: dict[str, int] = {}

    def depth(name: str, below: frozenset[str]) -> int:
        if name not in inputs or name in below:
            return 0
        if name not in depths:
            depths[name] = 1 + max((depth(repo, below | {name}) for repo in inputs[name]), default=0)
        return depths[name]

    return max((depth(name, frozenset()) for name in inputs), default=0)


class Pipelines:
    def __init__(
        self, *, kv: KV, pfs: Pfs, jobs: Jobs, stop_job: Callable[[str, str], Awaitable[None]],
        delete_job: Callable[[str], Awaitable[None]], drop_output: Callable[[str], None] = lambda repo: None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._kv = kv
        self._pfs = pfs
        self._jobs = jobs
        self._stop_job = stop_job  # (job ID, reason): ends an unfinished job
        self._delete_job = delete_job  # (job ID): removes an ended job and what its pods left
        self._drop_output = drop_output  # (output repo): a hint to the executor (Executor.output_dropped)
        self._now = now

    async def get(self, name: str) -> tuple[PipelineRecord, int]:
        """The pipeline's record and its revision; a pipeline being deleted is not found."""
        found = await self._kv.get(keys.pipeline(name))
        if found is not None and not (record := decode_pipeline(found.value)).deleting:
            return record, found.mod_revision
        raise _not_found(name)

    async def create(
        self, name: str, transform: Transform, parallelism: Parallelism, inputs: Sequence[PipelineInput],
        *, update: bool = False, no_archive: bool = False,
    ) -> PipelineRecord:
        repos = [i.repo for i in inputs]
        if len(set(repos)) != len(repos):
            raise InvalidManifest(f"pipeline {name!r} names an input repo twice")
        if name in repos:
            raise InvalidManifest(f"pipeline {name!r} cannot take its own output repo as input")
        if not transform.cmd:
            raise InvalidManifest(f"pipeline {name!r} has no transform.cmd; say what to run")
        for repo in repos:
            await self._pfs.repos.get(repo)
        if update:
            return await self._update(name, transform, parallelism, tuple(inputs), no_archive)
        existing = await self._kv.get(keys.pipeline(name))
        if existing is not None:
            hint = ("it is being deleted; create it again once delete-pipeline has returned"
                    if decode_pipeline(existing.value).deleting else "use update-pipeline to change it")
            raise PipelineExists(f"pipeline {name} already exists", hint=hint)
        try:
            await self._pfs.repos.create(name, repos)
        except RepoExists as err:
            raise RepoExists(f"repo {name} exists",
                             hint="a pipeline's output repo takes its name; delete the repo or rename the pipeline") from err
        record = PipelineRecord(name, transform, parallelism, tuple(inputs), self._now())
        try:
            result = await self._kv.txn([Compare(keys.pipeline(name), 0)], [Put(keys.pipeline(name), encode(record))])
        except PachError:
            with contextlib.suppress(PachError):  # no output repo left behind without its pipeline
                await self._pfs.repos.delete(name, force=True)
            raise
        if not result.succeeded:
            await self._pfs.repos.delete(name, force=True)
            raise PipelineExists(f"pipeline {name} already exists", hint="it was created meanwhile")
        logger.info("created pipeline %s", name)
        return record

    async def _update(
        self, name: str, transform: Transform, parallelism: Parallelism, inputs: tuple[PipelineInput, ...],
        no_archive: bool,
    ) -> PipelineRecord:
        old, revision = await self.get(name)
        record = dataclasses.replace(
            old, transform=transform, parallelism=parallelism, inputs=inputs, version=old.version + 1,
            state=PipelineState.IDLE, recent_error="",
        )
        await self._pfs.repos.set_provenance(name, [i.repo for i in inputs])
        result = await self._kv.txn(
            [Compare(keys.pipeline(name), revision)],
            [Put(keys.pipeline(name), encode(record)), Delete(keys.head(name))],
        )
        if not result.succeeded:
            return await self._update(name, transform, parallelism, inputs, no_archive)
        # The new version's controller may already be making jobs: touch only the old ones.
        old_jobs = [job for job in await self._jobs.list(name) if job.pipeline_version < record.version]
        for job in old_jobs:
            if not job.state.done:
                await self._stop_job(job.id, "replaced by update-pipeline")
        if not no_archive:
            await self._pfs.commits.archive([(name, job.output_commit) for job in old_jobs if job.output_commit])
        logger.info("updated pipeline %s to version %d", name, record.version)
        return record

    async def inspect(self, name: str) -> PipelineInfo:
        record, _ = await self.get(name)
        counts: dict[JobState, int] = {}
        for job in await self._jobs.list(name):
            counts[job.state] = counts.get(job.state, 0) + 1
        return PipelineInfo(record, counts)

    async def list(self) -> list[PipelineInfo]:
        records = [decode_pipeline(kv.value) for kv in (await self._kv.range(keys.pipelines())).kvs]
        return [await self.inspect(record.name) for record in records if not record.deleting]

    async def delete(self, name: str) -> None:
        """Deletes the pipeline and its jobs; its output repo stays.

        The record is first marked as being deleted, which ends its controller;
        its owner (the supervisor) then finishes the deletion, again after a
        crash, and this returns once the record is gone."""
        found = await self._kv.get(keys.pipeline(name))
        if found is None:
            raise _not_found(name)
        record = decode_pipeline(found.value)
        if not record.deleting:
            marked = dataclasses.replace(record, deleting=True)
            result = await self._kv.txn([Compare(found.key, found.mod_revision)], [Put(found.key, encode(marked))])
            if not result.succeeded:
                return await self.delete(name)

        async def gone() -> bool | None:
            return True if await self._kv.get(keys.pipeline(name)) is None else None

        await wait_for(self._kv, [keys.pipeline(name)], gone)

    async def finish_delete(self, name: str) -> None:
        """Stops and removes the jobs of a pipeline marked as being deleted, then its record.
        Run by the pipeline's owner; each step may be done again after a crash."""
        for job in await self._jobs.list(name):
            if not job.state.done:
                await self._stop_job(job.id, "its pipeline was deleted")
            await self._delete_job(job.id)
        # Before the record goes: once it has, the supervisor may cancel this task at any await.
        self._drop_output(name)
        await self._kv.txn([], [Delete(keys.pipeline(name)), Delete(keys.head(name)),
                                DeletePrefix(keys.triggers(name))])
        logger.info("deleted pipeline %s", name)

    async def set_stopped(self, name: str, stopped: bool) -> None:
        """Stops or starts the pipeline; returns once its controller has acted on it."""
        record, revision = await self.get(name)
        if record.stopped != stopped:
            updated = dataclasses.replace(record, stopped=stopped)
            result = await self._kv.txn([Compare(keys.pipeline(name), revision)],
                                        [Put(keys.pipeline(name), encode(updated))])
            if not result.succeeded:
                return await self.set_stopped(name, stopped)

        async def settled() -> bool | None:
            current, _ = await self.get(name)
            if stopped:
                wanted = PipelineState.STOPPED
            else:
                wanted = PipelineState.RUNNING if current.inputs else PipelineState.IDLE
            return True if current.state is wanted else None

        await wait_for(self._kv, [keys.pipeline(name)], settled)

    async def delete_all(self) -> None:
        for kv in (await self._kv.range(keys.pipelines())).kvs:
            await self.delete(keys.name_from_key(kv.key))


def _not_found(name: str) -> PipelineNotFound:
    return PipelineNotFound(f"PipelineInfos {name} not found", hint="see list-pipeline")
