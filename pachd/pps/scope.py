"""What a pod may touch with its job credential: its job's input repos and
output repo to read, and only its job's running pods' commits to write.

pachd/auth.py asks this for every call that carries a job credential, so a pod
cannot read another pipeline's data, write into another job's commits, or
delete anything, whatever it sends.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from pachd.errors import PermissionDenied
from pachd.pps import keys
from pachd.pps.specs import PodState, decode_job
from pachd.storage.kv import KV

_KEPT = 256  # scopes kept; a pod makes many calls and its inputs never change


@dataclass(frozen=True, slots=True)
class JobScope:
    readable: frozenset[str]  # repos
    output_repo: str
    writable: frozenset[str]  # commit IDs in output_repo


class PodScopes:
    """Each job's scope, read from its record and kept for the next calls."""

    def __init__(self, kv: KV) -> None:
        self._kv = kv
        self._kept: OrderedDict[str, JobScope] = OrderedDict()

    async def check_read(self, job_id: str, repos: list[str]) -> None:
        scope = await self._scope(job_id, fresh=False)
        for repo in repos:
            if repo not in scope.readable:
                raise PermissionDenied(f"job {job_id}'s credential does not open repo {repo}",
                                       hint="a pod reads only its job's inputs and output repo")

    async def check_write(self, job_id: str, repo: str, commit_id: str) -> None:
        scope = await self._scope(job_id, fresh=False)
        if repo == scope.output_repo and commit_id not in scope.writable:
            scope = await self._scope(job_id, fresh=True)  # a pod claimed since: its commit is new
        if repo != scope.output_repo or commit_id not in scope.writable:
            raise PermissionDenied(f"job {job_id}'s credential does not open commit {repo}/{commit_id} to writes",
                                   hint="a pod writes only into its own commit of its job's output repo")

    async def _scope(self, job_id: str, *, fresh: bool) -> JobScope:
        kept = self._kept.get(job_id)
        if kept is not None and not fresh:
            self._kept.move_to_end(job_id)
            return kept
        found = await self._kv.get(keys.job(job_id))
        if found is None:
            raise PermissionDenied(f"job {job_id} no longer exists: its credential opens nothing")
        job = decode_job(found.value)
        scope = JobScope(
            readable=frozenset({i.repo for i in job.inputs} | {job.output_repo}),
            output_repo=job.output_repo,
            writable=frozenset(p.commit for p in job.pods if p.state is PodState.RUNNING and p.commit),
        )
        self._kept[job_id] = scope
        self._kept.move_to_end(job_id)
        while len(self._kept) > _KEPT:
            self._kept.popitem(last=False)
        return scope
