"""Jobs: their records, and the pod protocol (a pod claims an index, reports).

A job's pods each claim one pod index with StartJob and get their own output
commit, forked from the parent job's output (so /pfs/out starts as the
previous output and /pfs/prev shows it); FinishJob finishes that commit.
When every index has reported, the job's driver squashes the successful pod
commits into the job's output commit (see driver.py).
"""

from __future__ import annotations

import builtins

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pachd.errors import (
    Aborted,
    CommitExists,
    CommitFinished,
    FailedPrecondition,
    JobNotFound,
    JobStateConflict,
)
from pachd.pfs import Pfs
from pachd.pfs.sharding import EVERYTHING, Shard
from pachd.pps import keys
from pachd.pps.sharding import digits, shard_of
from pachd.pps.specs import Incremental, JobRecord, JobState, PodRecord, PodState, decode_job, encode
from pachd.storage.kv import KV, Compare, Delete, Op, Put
from pachd.storage.watching import wait_for

logger = logging.getLogger(__name__)

RETRIES = 20


@dataclass(frozen=True, slots=True)
class Mount:
    """One commit a pod sees under /pfs/<alias>."""

    repo: str
    commit: str
    alias: str = ""  # "" means the repo name
    shard: Shard = EVERYTHING
    from_commit: str = ""  # only what changed since this commit
    full_file: bool = False


@dataclass(frozen=True, slots=True)
class Claim:
    """What StartJob tells a pod: its index and what to mount."""

    job: JobRecord
    index: int
    mounts: tuple[Mount, ...]


def pod_failure(index: int, name: str, exit_code: int | None) -> str:
    """A job's reason when pod `index` reported that its code failed."""
    who = f"pod {index}" + (f" ({name})" if name else "")
    return f"{who}: the code exited with code {exit_code}" if exit_code is not None else f"{who}: the code failed"


class Jobs:
    def __init__(self, *, kv: KV, pfs: Pfs, now: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._pfs = pfs
        self._now = now

    # -- records ----------------------------------------------------------------

    async def get(self, job_id: str) -> tuple[JobRecord, int]:
        found = await self._kv.get(keys.job(job_id))
        if found is None:
            raise JobNotFound(f"JobInfos {job_id} not found", hint="see list-job")
        return decode_job(found.value), found.mod_revision

    async def inspect(self, job_id: str, *, block: bool = False) -> JobRecord:
        """The job; with block, once it has succeeded, failed or come out empty."""
        if not block:
            return (await self.get(job_id))[0]

        async def done() -> JobRecord | None:
            job = (await self.get(job_id))[0]
            return job if job.state.done else None

        return await wait_for(self._kv, [keys.job(job_id)], done)

    async def list(self, pipeline: str = "", input_commits: Sequence[tuple[str, str]] = ()) -> builtins.list[JobRecord]:
        """Jobs (newest first), of one pipeline if given, having all the input commits."""
        if pipeline:
            ids = [keys.name_from_key(kv.key) for kv in (await self._kv.range(keys.pipeline_jobs(pipeline))).kvs]
            jobs = [job for job_id in ids if (job := await self._find(job_id)) is not None]
        else:
            jobs = [decode_job(kv.value) for kv in (await self._kv.range(keys.jobs())).kvs]
        wanted = {(repo, (await self._pfs.commits.get(repo, commit_id))[0].id) for repo, commit_id in input_commits}
        jobs = [j for j in jobs if wanted <= {(i.repo, i.commit) for i in j.inputs}]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    async def _find(self, job_id: str) -> JobRecord | None:
        found = await self._kv.get(keys.job(job_id))
        return decode_job(found.value) if found else None

    async def update(self, job_id: str, change: Callable[[JobRecord], JobRecord]) -> JobRecord:
        """Applies `change` in a transaction guarded by the record's revision."""
        for _ in range(RETRIES):
            job, revision = await self.get(job_id)
            updated = change(job)
            if updated == job:
                return job
            result = await self._kv.txn([Compare(keys.job(job_id), revision)], [Put(keys.job(job_id), encode(updated))])
            if result.succeeded:
                return updated
        raise Aborted(f"updating job {job_id} lost too many races; try again")

    def create_ops(self, job: JobRecord) -> builtins.list[Op]:
        """The puts that create a job record and its index entry."""
        ops: builtins.list[Op] = [Put(keys.job(job.id), encode(job))]
        if job.pipeline:
            ops.append(Put(keys.pipeline_job(job.pipeline, job.id), b""))
        return ops

    async def delete(self, job_id: str) -> None:
        job = await self._find(job_id)
        if job is None:
            return
        ops: builtins.list[Op] = [Delete(keys.job(job_id))]
        if job.pipeline:
            ops.append(Delete(keys.pipeline_job(job.pipeline, job_id)))
        await self._kv.txn([], ops)

    async def create(self, job: JobRecord) -> bool:
        """Creates the job unless one with its ID exists; True if created."""
        result = await self._kv.txn([Compare(keys.job(job.id), 0)], self.create_ops(job))
        return result.succeeded

    # -- the pod protocol -------------------------------------------------------

    async def claim(self, job_id: str, *, index: int | None = None, pod_name: str = "") -> Claim:
        """StartJob: the pod takes a pending index, or the index it was started for.

        An executor starts a pod for an index only after the previous pod of
        that index ended, so a pod naming its index takes it over even if
        pachd has not yet seen the previous pod go; that pod's commit is
        cancelled and never squashed, so its shard counts once.
        """
        for _ in range(RETRIES):
            job, revision = await self.get(job_id)
            if job.state.done:
                raise JobStateConflict(f"job {job_id} has already finished ({job.state.name})")
            chosen = _claimable_index(job, index, pod_name)
            previous = job.pods[chosen]
            if previous.state is PodState.RUNNING and previous.name == pod_name:
                return Claim(job, chosen, await self._mounts(job, chosen))  # a retried StartJob
            attempt = previous.attempt + 1
            commit = await self._pod_commit(job, chosen, attempt)
            pods = list(job.pods)
            pods[chosen] = PodRecord(PodState.RUNNING, commit, pod_name, attempt)
            claimed = dataclasses.replace(job, pods=tuple(pods), state=JobState.RUNNING,
                                          started=job.started or self._now())
            result = await self._kv.txn([Compare(keys.job(job_id), revision)], [Put(keys.job(job_id), encode(claimed))])
            if result.succeeded:
                if previous.state is PodState.RUNNING:
                    await self.abandon(job.output_repo, previous.commit)
                logger.debug("job %s: pod %s claimed index %d (attempt %d)", job_id, pod_name, chosen, attempt)
                return Claim(claimed, chosen, await self._mounts(claimed, chosen))
        raise Aborted(f"claiming a pod of job {job_id} lost too many races; try again")

    async def abandon(self, repo: str, commit: str) -> None:
        """Cancels the commit of a pod that ended without reporting."""
        try:
            await self._pfs.commits.finish(repo, commit, cancel=True)
        except (CommitFinished, JobNotFound):
            pass

    async def release(self, job_id: str, index: int, pod_name: str) -> None:
        """A pod ended without reporting: its index is pending again."""
        job, _ = await self.get(job_id)
        pod = job.pods[index] if index < job.pod_count else None
        if pod is None or pod.state is not PodState.RUNNING or (pod_name and pod.name != pod_name):
            return

        def reset(current: JobRecord) -> JobRecord:
            if current.pods[index].commit != pod.commit:
                return current
            pods = list(current.pods)
            pods[index] = PodRecord(PodState.PENDING, "", "", pod.attempt)
            return dataclasses.replace(current, pods=tuple(pods))

        await self.update(job_id, reset)
        await self.abandon(job.output_repo, pod.commit)

    async def report(self, job_id: str, index: int, *, success: bool, pod_name: str = "",
                     exit_code: int | None = None) -> JobRecord:
        """FinishJob: the pod at `index` is done; its commit is finished (cancelled on failure).

        The first pod to report a failure gives the job its reason (with the
        code's exit code, when the shim sent it)."""
        job, _ = await self.get(job_id)
        if index >= job.pod_count:
            raise FailedPrecondition(f"job {job_id} has {job.pod_count} pods; there is no pod {index}")
        pod = job.pods[index]
        if pod.state is not PodState.RUNNING or (pod_name and pod.name and pod_name != pod.name):
            raise JobStateConflict(f"pod {index} of job {job_id} is not running as {pod_name or 'this pod'}")
        try:
            await self._pfs.commits.finish(job.output_repo, pod.commit, cancel=not success)
        except CommitFinished:
            pass  # a retried report: the commit was finished the first time

        def mark(current: JobRecord) -> JobRecord:
            if current.pods[index].commit != pod.commit:
                raise JobStateConflict(f"pod {index} of job {job_id} was restarted meanwhile")
            pods = list(current.pods)
            if success:
                pods[index] = dataclasses.replace(pod, state=PodState.SUCCESS)
                return dataclasses.replace(current, pods=tuple(pods))
            pods[index] = dataclasses.replace(pod, state=PodState.FAILURE, exit_code=exit_code)
            if current.reason:
                return dataclasses.replace(current, pods=tuple(pods))
            return dataclasses.replace(current, pods=tuple(pods), failed_pod=index,
                                       reason=pod_failure(index, pod.name, exit_code))

        return await self.update(job_id, mark)

    async def _pod_commit(self, job: JobRecord, index: int, attempt: int) -> str:
        """The pod's own output commit, archived (never an output of its own), its files
        naming the job's output commit, so that its tree is squashed as it stands (merge.py).

        Its branch name depends only on (job, index, attempt), so a retried
        claim finds the commit a failed one already made.
        """
        branch = f"pod_{job.id}_{index}_{attempt}"
        provenance = [(i.repo, i.commit) for i in job.inputs]
        commits = self._pfs.commits
        existing = await commits.branch_head(job.output_repo, branch)
        if existing is not None:
            return existing.id
        try:
            if job.parent:
                parent = await self.parent_output(job)
                return (await commits.fork(job.output_repo, parent, branch, provenance, archived=True,
                                           squash_into=job.output_commit)).id
            return (await commits.start(job.output_repo, branch, provenance, archived=True, new_branch=True,
                                        squash_into=job.output_commit)).id
        except CommitExists:
            return f"{branch}/0"

    async def parent_output(self, job: JobRecord) -> str:
        """The output commit of the job's parent ("" for none)."""
        return (await self.get(job.parent))[0].output_commit if job.parent else ""

    async def _mounts(self, job: JobRecord, index: int) -> tuple[Mount, ...]:
        parent = (await self.get(job.parent))[0] if job.parent else None
        before = {i.repo: i.commit for i in parent.inputs} if parent else {}
        numbers = digits(index, job.shard_moduli) if job.shard_moduli else [0] * len(job.inputs)
        mounts = []
        for k, given in enumerate(job.inputs):
            modulus = job.shard_moduli[k] if job.shard_moduli else 1
            shard = shard_of(given.method.partition, numbers[k], modulus) if modulus > 1 else EVERYTHING
            incremental = given.method.incremental is not Incremental.NONE
            from_commit = before.get(given.repo, "") if incremental else ""
            if from_commit == given.commit:
                from_commit = ""  # the same commit as last time: shown in full
            mounts.append(Mount(given.repo, given.commit, "", shard, from_commit,
                                given.method.incremental is Incremental.FULL))
        pod_commit = job.pods[index].commit
        mounts.append(Mount(job.output_repo, pod_commit, "out"))
        if job.parent and parent is not None and parent.output_commit:
            mounts.append(Mount(job.output_repo, parent.output_commit, "prev"))
        return tuple(mounts)


def _claimable_index(job: JobRecord, wanted: int | None, pod_name: str) -> int:
    if wanted is not None and 0 <= wanted < job.pod_count:
        pod = job.pods[wanted]
        if pod.state is PodState.PENDING or (pod.state is PodState.RUNNING and pod_name):
            return wanted
        raise JobStateConflict(f"pod {wanted} of job {job.id} has already reported")
    for index, pod in enumerate(job.pods):
        if pod.state is PodState.PENDING:
            return index
    raise JobStateConflict(f"every pod of job {job.id} is already running or done")
