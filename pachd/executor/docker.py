"""The Docker executor: each pod is one container on a Docker engine.

A pod of index i is the container `pach-<cluster>-<job>-<i>-<attempt>` of
the job's image running `job-shim <job>`, labelled with the cluster, job,
pipeline, index and attempt so that the engine itself is the record of what
ran: logs, delete and recover all start from a label filter. The cluster (one
pachd, or the replicas sharing one etcd) keeps two pachds on one engine apart:
their job IDs are alike whenever their commits are (`master/0`), and neither
may read, adopt or remove the other's containers. pachd plays the part of the
Kubernetes Job controller: one waiter thread per container blocks in the
engine's wait call, and a container that exits non-zero is replaced by the
next attempt until `max_restarts` replacements were used.

Containers reach pachd at the address given (--pod-pachd-address), else at
host.docker.internal, which the engine maps to the host ("host-gateway").
Secrets are a Kubernetes notion: a job that names some fails its pods.

The `docker` client is synchronous: calls run in threads (asyncio.to_thread),
and each waiter is a daemon thread of its own with its own connection, so a
long wait never holds a worker of the default pool.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.utils import parse_repository_tag

from pachd.errors import Unavailable
from pachd.executor.base import EventLog, JobSpec, LogLine, PodEvent, PodPhase

logger = logging.getLogger(__name__)

CLUSTER_LABEL = "pachyderm.io/cluster"
JOB_LABEL = "pachyderm.io/job"
PIPELINE_LABEL = "pachyderm.io/pipeline"
INDEX_LABEL = "pachyderm.io/index"
ATTEMPT_LABEL = "pachyderm.io/attempt"
MAX_RESTARTS_LABEL = "pachyderm.io/max-restarts"
WAIT_SECONDS = 30  # each wait request ends after this; the waiter then asks again
NAME_RETRIES = 5  # container names taken by someone else: try the next attempt number
SECRETS_REASON = "secrets need the kubernetes executor"
PULL_RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between pulls of an image that could not be had; then 30

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Container:
    """What the engine says of one job container."""

    id: str
    name: str
    job_id: str
    index: int
    attempt: int
    max_restarts: int
    status: str  # created, running, exited, dead, ...
    exit_code: int


@dataclass
class _Job:
    """One job's pods: the events so far, and which container runs for each index."""

    job_id: str
    spec: JobSpec | None = None  # None for a job adopted by recover() until start() names it
    max_restarts: int = 3
    log: EventLog = field(default_factory=EventLog)
    running: dict[int, str] = field(default_factory=dict)  # index -> container name being started or run
    attempts: dict[int, int] = field(default_factory=dict)  # index -> containers created so far

    def add(self, event: PodEvent) -> None:
        self.log.add(event)


class DockerExecutor:
    def __init__(self, *, docker_host: str, cluster: str, pachd_address: str, base_env: Mapping[str, str],
                 image_pull_policy: str, extra_hosts: Mapping[str, str] | None = None,
                 privileged: bool = False) -> None:
        """`docker_host` is the engine's URL (DOCKER_HOST: unix://..., tcp://...);
        `cluster` names this pachd's containers apart from other pachds' on the engine;
        `pachd_address` host:port as containers reach pachd; `extra_hosts` name ->
        address entries for the containers' /etc/hosts (e.g. host.docker.internal:
        host-gateway); `privileged` lets pods mount FUSE (PACH_PFS_MODE=fuse)."""
        self._host = docker_host
        self._cluster = cluster
        host, _, port = pachd_address.rpartition(":")
        self._service_env = {"PACHD_PORT_650_TCP_ADDR": host, "PACHD_PORT_650_TCP_PORT": port}
        self._base_env = dict(base_env)
        self._pull_policy = image_pull_policy
        self._extra_hosts = dict(extra_hosts or {})
        self._privileged = privileged
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._replacements: dict[str, asyncio.Task[None]] = {}  # name of the crashed container -> its replacing
        self._pulls: dict[str, asyncio.Task[None]] = {}  # job -> pulling its image again until it can be had
        self._recovered = False
        self._recovering = asyncio.Lock()  # one recovery, even when several jobs start at once
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()

    # -- the Executor protocol ----------------------------------------------------

    async def recover(self) -> None:
        """Adopts the job containers an earlier pachd left: running ones are
        waited for again, ended ones replay their outcome. If the engine cannot
        be reached now, this is tried again at the next start()."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._recover()
        except Unavailable as err:
            logger.error("%s; containers of an earlier pachd are adopted once it answers", err.message)

    async def _recover(self) -> None:
        async with self._recovering:
            if not self._recovered:
                await self._adopt(await self._call(self._list, None))
                self._recovered = True

    async def _adopt(self, found: list[_Container]) -> None:
        for seen in sorted(found, key=lambda c: (c.job_id, c.index, c.attempt)):
            job = self._job(seen.job_id)
            job.max_restarts = seen.max_restarts
            job.attempts[seen.index] = max(job.attempts.get(seen.index, 0), seen.attempt + 1)
            if seen.status == "created":  # pachd died between create and start: start() makes the next
                try:
                    await self._call(self._remove, seen.id)
                except Unavailable as err:
                    logger.warning("cannot remove the unstarted container %s: %s", seen.name, err.message)
                continue
            job.add(PodEvent(seen.job_id, seen.index, seen.name, PodPhase.STARTED))
            if seen.status in ("running", "restarting", "paused"):
                job.running[seen.index] = seen.name
                self._wait_in_thread(job, seen.index, seen.attempt, seen.name, seen.id)
                logger.info("adopted container %s of job %s", seen.name, seen.job_id)
            else:  # exited (or dead: never a success)
                code = seen.exit_code if seen.status == "exited" else seen.exit_code or 1
                self._ended(job, seen.index, seen.attempt, seen.name, code, replace=False)

    async def start(self, spec: JobSpec) -> None:
        self._loop = asyncio.get_running_loop()
        await self._recover()
        job = self._job(spec.job_id)
        job.spec, job.max_restarts = spec, spec.max_restarts
        # Indices whose restarts ran out have reported GAVE_UP already (live, or replayed by recover).
        wanted = [k for k in spec.indices if k not in job.running and job.attempts.get(k, 0) <= spec.max_restarts]
        if not wanted:
            return
        if spec.secrets:
            for index in wanted:
                job.add(PodEvent(spec.job_id, index, self._name(job, index), PodPhase.GAVE_UP, SECRETS_REASON))
            return
        if spec.job_id in self._pulls:
            return  # its image is being pulled again: its pods start once it is there
        refused, final = await self._call(self._ensure_image, spec.image)
        if refused is None:
            for index in wanted:
                await self._launch(job, index)
            return
        for index in wanted:  # as on Kubernetes: a missing image under Never fails, a failed pull waits
            job.add(PodEvent(spec.job_id, index, self._name(job, index),
                             PodPhase.GAVE_UP if final else PodPhase.PULLING, refused))
        if not final:
            task = asyncio.create_task(self._pull_until_there(job, spec.image), name=f"pull-{spec.job_id}")
            self._pulls[spec.job_id] = task
            task.add_done_callback(lambda _: self._pulls.pop(spec.job_id, None))

    async def _pull_until_there(self, job: _Job, image: str) -> None:
        """Pulls the image again, backing off, until it is there; then starts the job's pods."""
        for attempt in itertools.count():
            await asyncio.sleep(PULL_RETRY_DELAYS[min(attempt, len(PULL_RETRY_DELAYS) - 1)])
            if self._jobs.get(job.job_id) is not job:
                return  # deleted meanwhile
            try:
                refused, _ = await self._call(self._ensure_image, image)
            except Unavailable as err:  # the engine is away: try again later
                logger.info("job %s: pulling %s: %s", job.job_id, image, err)
                continue
            if refused is None:
                break
        assert job.spec is not None
        logger.info("job %s: image %s is there now; starting its pods", job.job_id, image)
        for index in job.spec.indices:
            if index not in job.running and job.attempts.get(index, 0) <= job.spec.max_restarts:
                await self._launch(job, index)

    def events(self, job_id: str) -> AsyncIterator[PodEvent]:
        return self._job(job_id).log.follow()

    async def logs(self, job_id: str) -> AsyncIterator[LogLine]:
        containers = await self._call(self._list, job_id)
        for seen in sorted(containers, key=lambda c: (c.index, c.attempt)):
            try:
                data = await self._call(self._logs, seen.id)
            except NotFound:  # removed meanwhile
                continue
            for line in data.splitlines():
                yield LogLine(seen.index, seen.attempt, line)

    async def delete(self, job_id: str) -> None:
        # First: from now on the job's waiters are ignored, and a container being
        # created for it meanwhile is removed by _launch once the engine made it.
        self._jobs.pop(job_id, None)
        pulling = self._pulls.pop(job_id, None)
        if pulling is not None:
            pulling.cancel()
            await asyncio.gather(pulling, return_exceptions=True)
        for seen in await self._call(self._list, job_id):
            await self._call(self._remove, seen.id)
        logger.debug("job %s: containers removed", job_id)

    def reserve(self, pods: int) -> None:
        """Pods start with their jobs here: nothing to keep ready."""

    def output_finished(self, repo: str, commit: str) -> None:
        """Pods here copy their previous output in (the shim's layout): nothing to lay out ahead."""

    def output_dropped(self, repo: str) -> None:
        """Nothing is laid out here."""

    async def node_count(self) -> int:
        return 1

    async def close(self) -> None:
        """Stops waiting; the containers run on for the next pachd's recover()."""
        self._stopping.set()
        tasks = [*self._replacements.values(), *self._pulls.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await asyncio.to_thread(self._client.close)

    # -- starting containers ------------------------------------------------------

    def _job(self, job_id: str) -> _Job:
        return self._jobs.setdefault(job_id, _Job(job_id))

    def _name(self, job: _Job, index: int, attempt: int | None = None) -> str:
        return f"pach-{self._cluster}-{job.job_id}-{index}-{job.attempts.get(index, 0) if attempt is None else attempt}"

    async def _launch(self, job: _Job, index: int) -> None:
        """Creates and starts the next container of `index`, and waits for it in a thread."""
        assert job.spec is not None
        spec = job.spec
        job.running[index] = self._name(job, index)  # taken now: a concurrent start() leaves it alone
        try:
            attempt, name, container_id = await self._create(job, index)
        except APIError as err:
            del job.running[index]
            reason = f"the Docker engine refused the container: {err.explanation or err}"
            job.add(PodEvent(spec.job_id, index, self._name(job, index, job.attempts[index] - 1),
                             PodPhase.GAVE_UP, reason))
            return
        except BaseException:
            job.running.pop(index, None)
            raise
        if self._jobs.get(spec.job_id) is not job:  # deleted while the engine made it
            await self._call(self._remove, container_id)
            return
        job.add(PodEvent(spec.job_id, index, name, PodPhase.STARTED))
        logger.debug("job %s: started container %s", spec.job_id, name)
        self._wait_in_thread(job, index, attempt, name, container_id)

    async def _create(self, job: _Job, index: int) -> tuple[int, str, str]:
        """(attempt, name, container ID) of a new running container for `index`."""
        assert job.spec is not None
        for _ in range(NAME_RETRIES):
            attempt = job.attempts.get(index, 0)
            job.attempts[index] = attempt + 1
            name = job.running[index] = self._name(job, index, attempt)
            try:
                return attempt, name, await self._call(self._run, job.spec, index, attempt, name, refusals=True)
            except APIError as err:
                if err.status_code != 409:  # 409: the name is taken (not by us); try the next attempt
                    raise
        raise Unavailable(f"the names of job {job.job_id}'s containers are all taken on the engine at {self._host}")

    def _replace(self, job: _Job, index: int, crashed: str) -> None:
        """Starts the next container of `index` in a task recorded by the crashed one's name."""

        async def replace() -> None:
            try:
                await self._launch(job, index)
            except Unavailable as err:
                job.add(PodEvent(job.job_id, index, crashed, PodPhase.GAVE_UP,
                                 f"no replacement could be started: {err.message}"))
            finally:
                self._replacements.pop(crashed, None)

        job.running[index] = crashed  # until the replacement has its own name
        self._replacements[crashed] = asyncio.create_task(replace(), name=f"replace-{crashed}")

    def _ended(self, job: _Job, index: int, attempt: int, name: str, code: int | None, *,
               replace: bool = True) -> None:
        """A container ended (in the event loop): report it, and replace it if restarts remain."""
        if self._jobs.get(job.job_id) is not job or self._stopping.is_set():
            return  # deleted meanwhile, or pachd is stopping
        if job.running.get(index) == name:
            del job.running[index]
        if code == 0:
            job.add(PodEvent(job.job_id, index, name, PodPhase.SUCCEEDED))
            return
        reason = "the container was removed" if code is None else f"exit code {code}"
        if attempt >= job.max_restarts:
            job.add(PodEvent(job.job_id, index, name, PodPhase.GAVE_UP, reason))
            return
        job.add(PodEvent(job.job_id, index, name, PodPhase.CRASHED, reason))
        # A job adopted by recover() has no spec until start(), which starts the index then.
        if replace and job.spec is not None and index not in job.running:
            logger.info("container %s crashed (%s); starting a replacement", name, reason)
            self._replace(job, index, name)

    # -- waiting, in threads ------------------------------------------------------

    def _wait_in_thread(self, job: _Job, index: int, attempt: int, name: str, container_id: str) -> None:
        loop = self._loop
        assert loop is not None

        def wait() -> None:
            try:
                code = self._wait(container_id)
            except _Stopped:
                return
            try:
                loop.call_soon_threadsafe(self._ended, job, index, attempt, name, code)
            except RuntimeError:  # the loop closed: pachd stopped
                pass

        threading.Thread(target=wait, name=f"wait-{name}", daemon=True).start()

    def _wait(self, container_id: str) -> int | None:
        """The container's exit code, or None if it was removed. Raises _Stopped
        if pachd stops first. A client of its own: the wait holds its connection."""
        api = docker.APIClient(base_url=self._host, version=self._api().api.api_version, timeout=WAIT_SECONDS)
        try:
            while not self._stopping.is_set():
                try:
                    return int(api.wait(container_id, timeout=WAIT_SECONDS)["StatusCode"])
                except NotFound:
                    return None
                except requests.exceptions.ReadTimeout:
                    continue  # still running
                except (DockerException, requests.exceptions.RequestException) as err:
                    logger.warning("waiting for container %s failed (%s); retrying", container_id[:12], err)
                    self._stopping.wait(1.0)
            raise _Stopped()
        finally:
            api.close()

    # -- engine calls (run in threads) ------------------------------------------------

    def _api(self) -> docker.DockerClient:
        """The client, made on first use: making it asks the engine for its API version."""
        with self._client_lock:
            if self._client is None:
                self._client = docker.DockerClient(base_url=self._host, version="auto")
            return self._client

    async def _call(self, method: Callable[..., T], *args: Any, refusals: bool = False) -> T:
        """Runs an engine call in a thread. An engine that cannot be reached, or that
        fails, is Unavailable; NotFound passes, and so do other refusals (APIError)
        when the caller handles them (`refusals`)."""
        try:
            return await asyncio.to_thread(method, *args)
        except NotFound:
            raise
        except APIError as err:
            if refusals:
                raise
            raise Unavailable(f"the Docker engine at {self._host} (DOCKER_HOST) failed: "
                              f"{err.explanation or err}") from err
        except (DockerException, requests.exceptions.RequestException) as err:
            raise Unavailable(f"cannot reach the Docker engine at {self._host} (DOCKER_HOST): {err}") from err

    def _ensure_image(self, image: str) -> tuple[str | None, bool]:
        """Applies the pull policy: (why the image cannot be had, or None; whether that is final).

        A missing image under Never is final; a failed pull (no such image, no
        access, registry unreachable) may succeed later."""
        images = self._api().images
        if self._pull_policy != "Always":
            try:
                images.get(image)
                return None, False
            except ImageNotFound:
                if self._pull_policy == "Never":
                    return f'image "{image}" is not present and the pull policy is Never', True
        repository, tag = parse_repository_tag(image)
        try:
            logger.info("pulling image %s", image)
            images.pull(repository, tag=tag or "latest")
        except APIError as err:
            return f'cannot pull image "{image}": {err.explanation or err}', False
        return None, False

    def _run(self, spec: JobSpec, index: int, attempt: int, name: str) -> str:
        """Creates and starts one container; returns its ID."""
        env = {**self._base_env, **spec.env, "PACH_POD_INDEX": str(index), "PACH_POD_NAME": name,
               **self._service_env}
        labels = {**spec.labels, CLUSTER_LABEL: self._cluster, JOB_LABEL: spec.job_id,
                  PIPELINE_LABEL: spec.pipeline, INDEX_LABEL: str(index),
                  ATTEMPT_LABEL: str(attempt), MAX_RESTARTS_LABEL: str(spec.max_restarts)}
        container = self._api().containers.create(
            spec.image, list(spec.command), name=name, environment=env, labels=labels,
            privileged=self._privileged, extra_hosts=self._extra_hosts or None,
        )
        try:
            container.start()
        except APIError:
            container.remove(force=True)
            raise
        return str(container.id)

    def _list(self, job_id: str | None) -> list[_Container]:
        """This cluster's containers of a job (of every job when None), running or not."""
        labels = [f"{CLUSTER_LABEL}={self._cluster}", JOB_LABEL if job_id is None else f"{JOB_LABEL}={job_id}"]
        found = []
        for container in self._api().containers.list(all=True, filters={"label": labels}, ignore_removed=True):
            labels = container.labels
            try:
                index, attempt = int(labels[INDEX_LABEL]), int(labels[ATTEMPT_LABEL])
            except (KeyError, ValueError):
                continue  # not one of ours
            state = container.attrs.get("State") or {}
            found.append(_Container(
                id=str(container.id), name=container.name, job_id=labels[JOB_LABEL], index=index,
                attempt=attempt, max_restarts=int(labels.get(MAX_RESTARTS_LABEL) or 3),
                status=str(state.get("Status") or container.status), exit_code=int(state.get("ExitCode") or 0),
            ))
        return found

    def _logs(self, container_id: str) -> bytes:
        logs: bytes = self._api().containers.get(container_id).logs(stdout=True, stderr=True)
        return logs

    def _remove(self, container_id: str) -> None:
        try:
            self._api().api.remove_container(container_id, force=True)
        except NotFound:
            pass
        except APIError as err:
            if err.status_code != 409:  # 409: another removal of it is under way, which is what we want
                raise


class _Stopped(Exception):
    """pachd stops: a waiter ends without a result."""
