"""The job driver: takes one job from created to SUCCESS, FAILURE or EMPTY.

Steps, each recorded in the job record so a restarted pachd resumes where it
stopped: wait for the parent job (a failed parent is skipped: the job then
builds on the parent's parent), start the output commit, decide the shards
(or find the inputs empty), run the pods, and finally squash the pods'
commits into the output commit and finish it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable

from pachd.errors import CommitExists, CommitFinished, PachError
from pachd.executor.base import Executor, PodPhase
from pachd.pfs import Pfs
from pachd.pfs.files import DiffSpec
from pachd.pfs.sharding import EVERYTHING, Shard
from pachd.pps import keys
from pachd.pps.jobs import Jobs
from pachd.pps.pods import job_spec
from pachd.pps.sharding import choose_moduli, pod_count_wanted
from pachd.pps.specs import Incremental, JobInput, JobRecord, JobState, PodRecord, PodState
from pachd.storage.kv import KV
from pachd.storage.watching import wait_for

logger = logging.getLogger(__name__)


class JobDriver:
    def __init__(
        self, *, kv: KV, pfs: Pfs, jobs: Jobs, executor: Executor, default_image: str,
        now: Callable[[], float] = time.time, credential: Callable[[str], str] = lambda job_id: "",
    ) -> None:
        self._credential = credential
        self._kv = kv
        self._pfs = pfs
        self._jobs = jobs
        self._executor = executor
        self._default_image = default_image
        self._now = now

    async def drive(self, job_id: str) -> None:
        try:
            job = (await self._jobs.get(job_id))[0]
            if job.state.done:
                return
            if not job.output_commit:
                job = await self._settle_parent(job)
                job = await self._start_output(job)
            if not job.pods:
                job = await self._plan(job)
            if job.state.done:
                return
            await self._run_pods(job)
            await self._complete(job_id)
        except asyncio.CancelledError:
            raise
        except PachError as err:
            logger.warning("job %s failed: %s", job_id, err.message)
            await self._fail(job_id, err.message)

    async def _settle_parent(self, job: JobRecord) -> JobRecord:
        """Waits for the parent job; skips failed parents for their own parent."""
        while job.parent:
            parent = await self._jobs.inspect(job.parent, block=True)
            if parent.state is not JobState.FAILURE:
                break
            job = await self._jobs.update(job.id, lambda j: dataclasses.replace(j, parent=parent.parent))
        return job

    async def _start_output(self, job: JobRecord) -> JobRecord:
        """Starts the output commit: next after the parent's output on its branch if
        that is free, else on a branch named by the job (also when there is no parent).

        A failed sibling may hold the parent output's next commit; a crash may
        have left our own. Both are recognised, so this can be repeated safely.
        """
        commits = self._pfs.commits
        provenance = [(i.repo, i.commit) for i in job.inputs]
        parent_output = await self._jobs.parent_output(job)
        output = None
        if parent_output:
            try:
                output = await commits.start(job.output_repo, parent_output, provenance)
            except CommitExists:
                branch, number = parent_output.split("/")
                child = (await commits.get(job.output_repo, f"{branch}/{int(number) + 1}"))[0]
                wanted = {(r, (await commits.get(r, c))[0].key) for r, c in provenance}
                if child.is_open and {(k[0], k) for k in child.provenance} >= wanted:
                    output = child
        if output is None:
            try:
                if parent_output:
                    output = await commits.fork(job.output_repo, parent_output, job.id, provenance)
                else:
                    output = await commits.start(job.output_repo, job.id, provenance, new_branch=True)
            except CommitExists:  # made before a crash
                output = (await commits.get(job.output_repo, f"{job.id}/0"))[0]
        return await self._jobs.update(job.id, lambda j: dataclasses.replace(j, output_commit=output.id))

    async def _plan(self, job: JobRecord) -> JobRecord:
        """Decides the shards and pod count, or ends the job as EMPTY.

        Only whether an input (or a shard of it) holds anything decides, and
        that is known from its first file; how much each input holds is
        counted only where it chooses between several inputs.
        """
        parent = (await self._jobs.get(job.parent))[0] if job.parent else None
        before = {i.repo: i.commit for i in parent.inputs} if parent else {}

        async def size(k: int, shard: Shard, enough: int = 0) -> int:
            given = job.inputs[k]
            return await self._input_size(given, shard, before.get(given.repo, ""), enough)

        async def has_data(k: int, shard: Shard) -> bool:
            return await size(k, shard, enough=1) > 0

        enough = 0 if len(job.inputs) > 1 else 1
        sizes = [await size(k, EVERYTHING, enough) for k in range(len(job.inputs))]
        if any(s == 0 and not i.run_empty for s, i in zip(sizes, job.inputs)):
            try:
                await self._pfs.commits.finish(job.output_repo, job.output_commit)
            except CommitFinished:
                pass
            return await self._jobs.update(job.id, lambda j: dataclasses.replace(
                j, state=JobState.EMPTY, finished=self._now()))
        wanted = pod_count_wanted(job.parallelism, await self._executor.node_count())
        if job.inputs:
            moduli = await choose_moduli([i.method.partition for i in job.inputs], sizes, wanted, has_data)
        else:
            moduli = []
        count = math.prod(moduli) if moduli else wanted
        return await self._jobs.update(job.id, lambda j: dataclasses.replace(
            j, shard_moduli=tuple(moduli), pods=tuple(PodRecord() for _ in range(count))))

    async def _input_size(self, given: JobInput, shard: Shard, before: str, enough: int = 0) -> int:
        """What the job sees of an input's shard (an empty file counts 1); with `enough`,
        counting stops once it reached that much."""
        incremental = given.method.incremental is not Incremental.NONE
        diff = None
        if incremental and before and before != given.commit:
            diff = DiffSpec(before, given.method.incremental is Incremental.FULL)
        total = 0
        async with contextlib.aclosing(self._pfs.files.walk(given.repo, given.commit, shard=shard, diff=diff)) as files:
            async for _, refs in files:
                total += sum(r.size for r in refs) or 1  # an empty file is still something to see
                if enough and total >= enough:
                    break
        return total

    async def _run_pods(self, job: JobRecord) -> None:
        """Starts the pods not yet done and waits until every pod index has reported."""
        indices = [k for k, pod in enumerate(job.pods) if pod.state in (PodState.PENDING, PodState.RUNNING)]
        await self._executor.start(job_spec(job, indices=indices, default_image=self._default_image,
                                              token=self._credential(job.id),
                                              previous_output=await self._jobs.parent_output(job)))

        async def all_reported() -> bool | None:
            current = (await self._jobs.get(job.id))[0]
            if current.state.done:  # stopped from elsewhere (update-pipeline, delete, another replica)
                return True
            return True if all(p.state in (PodState.SUCCESS, PodState.FAILURE) for p in current.pods) else None

        follower = asyncio.create_task(self._follow_pods(job.id))
        try:
            await wait_for(self._kv, [keys.job(job.id)], all_reported)
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)

    async def _follow_pods(self, job_id: str) -> None:
        """Frees the index of a pod that crashed; fails the index when restarts ran out."""
        async for event in self._executor.events(job_id):
            if event.phase is PodPhase.CRASHED:
                await self._jobs.release(job_id, event.index, event.name)
            elif event.phase is PodPhase.PULLING:
                waiting = f"pod {event.index}: {event.reason}"
                await self._jobs.update(job_id, lambda j: dataclasses.replace(j, waiting=waiting)
                                        if j.state is JobState.PULLING else j)
            elif event.phase is PodPhase.GAVE_UP:
                await self._jobs.release(job_id, event.index, event.name)
                await self._give_up(job_id, event.index, event.name, event.reason)

    async def _give_up(self, job_id: str, index: int, name: str, reason: str) -> None:
        def failed(job: JobRecord) -> JobRecord:
            if job.pods[index].state in (PodState.SUCCESS, PodState.FAILURE):
                return job
            pods = list(job.pods)
            pods[index] = dataclasses.replace(pods[index], state=PodState.FAILURE, name=name)
            if job.reason:
                return dataclasses.replace(job, pods=tuple(pods))
            return dataclasses.replace(job, pods=tuple(pods), failed_pod=index, reason=f"pod {index}: {reason}")

        await self._jobs.update(job_id, failed)

    async def _complete(self, job_id: str) -> None:
        """Squashes the successful pods' commits into the output commit, finishes it, sets the state.

        Resumable from any point: the output's finish names the pods' commits
        in the transaction that flags it finishing, so a finish that a crash
        interrupted is completed the same way, and once the output is finished
        only the steps after it are done again.
        """
        job = (await self._jobs.get(job_id))[0]
        if job.state.done:
            await self._executor.delete(job_id)  # stopped meanwhile: its pods are not needed
            return
        done = [pod.commit for pod in job.pods if pod.state is PodState.SUCCESS]
        failed = any(pod.state is PodState.FAILURE for pod in job.pods)
        output = (await self._pfs.commits.get(job.output_repo, job.output_commit))[0]
        if output.is_open:
            try:
                output = await self._pfs.squash.finish(job.output_repo, done, job.output_commit, cancel=failed)
            except CommitFinished:
                output = (await self._pfs.commits.get(job.output_repo, job.output_commit))[0]
        state = JobState.FAILURE if failed or output.cancelled else JobState.SUCCESS
        reason = job.reason or ("a pod's code failed" if failed else "the parent's output was cancelled"
                                if output.cancelled else "")
        await self._jobs.update(job_id, lambda j: dataclasses.replace(
            j, state=state, finished=self._now(), reason=reason if state is JobState.FAILURE else ""))
        logger.info("job %s: %s", job_id, state.name)
        if state is JobState.SUCCESS and job.pipeline:
            self._executor.output_finished(job.output_repo, job.output_commit)

    async def _fail(self, job_id: str, reason: str) -> None:
        job = (await self._jobs.get(job_id))[0]
        if job.output_commit:
            try:
                await self._pfs.commits.finish(job.output_repo, job.output_commit, cancel=True)
            except PachError:
                pass
        await self._jobs.update(job_id, lambda j: dataclasses.replace(
            j, state=JobState.FAILURE, finished=self._now(), reason=reason))
