"""The executor contract: how the pods of a job run.

PPS describes a job's pods with a JobSpec (built by a pure function in
pachd/pps/pods.py) and hands it to one Executor. Implementations:
`local.LocalExecutor` (pod processes in private mount namespaces, the
default), `kubernetes.KubernetesExecutor` (one batch/v1 Job per job) and
`docker.DockerExecutor` (one container per pod). They are the only modules
that see processes, Kubernetes objects or containers.

A pod runs `job-shim <job-id>`, which talks to pachd (StartJob/FinishJob) and
exits 0 once it has reported its result, whatever the user code did. Any
other ending (non-zero exit, a signal, an eviction) means the pod crashed
before reporting: the executor replaces it, up to `max_restarts` times per
pod index, and reports what happened through events().
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SecretMount:
    """A Kubernetes secret mounted into each pod at `mount_path`."""

    name: str
    mount_path: str


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything an executor needs to run the pods of one job."""

    job_id: str
    pipeline: str  # "" for a job made by create-job
    pod_count: int
    indices: tuple[int, ...]  # the pod indices to start now (those not yet done)
    image: str  # transform.image, or the default job-shim image
    command: tuple[str, ...]  # ("job-shim", job_id)
    env: Mapping[str, str]  # transform.env and PACH_* variables; never pachd's own env
    secrets: tuple[SecretMount, ...] = ()
    max_restarts: int = 3  # per pod index
    labels: Mapping[str, str] = field(default_factory=dict)
    output_repo: str = ""
    previous_output: str = ""  # the commit of output_repo each pod's /pfs/out starts from ("" for none)


class PodPhase(enum.Enum):
    STARTED = "started"  # a pod process/container began (also each replacement)
    PULLING = "pulling"  # its image cannot be had yet (reason: the cluster's words); the job stays PULLING
    SUCCEEDED = "succeeded"  # exited 0: it reported to pachd
    CRASHED = "crashed"  # ended otherwise; a replacement follows if restarts remain
    GAVE_UP = "gave_up"  # crashed with no restarts left for its index


@dataclass(frozen=True, slots=True)
class PodEvent:
    job_id: str
    index: int  # the pod index (0..pod_count-1) the pod was started for
    name: str  # unique per attempt; the shim sends it with StartJob/FinishJob
    phase: PodPhase
    reason: str = ""  # for CRASHED/GAVE_UP: exit code, signal, or the cluster's reason


class EventLog:
    """The pod events of one job so far; each reader replays them from the first, then follows."""

    def __init__(self) -> None:
        self.events: list[PodEvent] = []
        self._grew = asyncio.Event()

    def add(self, event: PodEvent) -> None:
        self.events.append(event)
        self._grew.set()
        self._grew = asyncio.Event()  # readers waiting on the old one wake; later ones wait afresh

    async def follow(self) -> AsyncIterator[PodEvent]:
        seen = 0
        while True:
            grew = self._grew
            fresh = self.events[seen:]
            seen += len(fresh)
            for event in fresh:
                yield event
            if not fresh:
                await grew.wait()


@dataclass(frozen=True, slots=True)
class LogLine:
    index: int  # pod index
    attempt: int  # 0 for the first pod of the index, then 1, 2... for replacements
    line: bytes  # one line of stdout/stderr, without its newline


class Executor(Protocol):
    """Runs the pods of jobs. Every method may raise pachd.errors.Unavailable."""

    async def recover(self) -> None:
        """Called once at pachd start-up, before any start(): reconcile with pods
        left by an earlier pachd (adopt them, or kill them so they are re-run)."""

    async def start(self, spec: JobSpec) -> None:
        """Starts a pod for each of `spec.indices`, passing each its index and
        name in the environment (PACH_POD_INDEX, PACH_POD_NAME) and how to reach
        pachd. Idempotent: indices whose pod runs already are left alone."""

    def events(self, job_id: str) -> AsyncIterator[PodEvent]:
        """Pod events of the job, from its first pod on, then live, until the
        caller stops iterating. Events of one pod index come in order."""

    def logs(self, job_id: str) -> AsyncIterator[LogLine]:
        """Every line the job's pods printed so far: ordered by pod index, then
        attempt, then as printed. Each line exactly once."""

    async def delete(self, job_id: str) -> None:
        """Stops the job's pods and removes what start() created. No error if
        nothing is left."""

    async def node_count(self) -> int:
        """How many nodes can run pods (1 for local), for COEFFICIENT parallelism."""

    def reserve(self, pods: int) -> None:
        """A hint: one commit may set off `pods` jobs one after another (the deepest
        chain of pipelines). An executor that starts pods ahead of their jobs keeps
        that many ready; the others ignore it."""

    def output_finished(self, repo: str, commit: str) -> None:
        """A hint: `commit` is a pipeline's newest output, which its next job's pods start
        from. An executor that lays outputs out for pods starts on it now; the others ignore it."""

    def output_dropped(self, repo: str) -> None:
        """A hint: the pipeline whose output `repo` is was deleted, so what an executor laid out
        of it is not needed (removed in the background)."""

    async def close(self) -> None:
        """Stops watching; pods keep their state for recover()."""
