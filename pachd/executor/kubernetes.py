"""The Kubernetes executor: each job is one batch/v1 Job, its pods real pods.

The Job is Indexed with parallelism = completions = the pod count, so
Kubernetes gives every pod its index (JOB_COMPLETION_INDEX, which the shim
reads) and replaces a failed pod of an index up to `backoffLimitPerIndex`
times. pachd only creates and deletes Jobs; it learns what happened from one
watch on the pods it labelled, turned into PodEvents per job. Pods and Jobs
outlive pachd: after a restart the watch's first list replays each job's
history, so nothing is killed or re-run by recover().

Indexed Jobs came with Kubernetes 1.21 (on by default from 1.22) and
backoffLimitPerIndex with 1.28 (on by default from 1.29); an older API server
silently drops both fields. On such a server (told by its version, or by a
created Job that comes back without them) each pod of a job is a Job of its
own instead: completions 1, backoffLimit = max_restarts, its index in the
pod's PACH_POD_INDEX and the pachyderm.io/index annotation.

The official client is synchronous: calls run in threads, and the watch runs
in a thread of its own that hands events to the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from pachd.errors import Unavailable
from pachd.executor.base import EventLog, JobSpec, LogLine, PodEvent, PodPhase

logger = logging.getLogger(__name__)

JOB_LABEL = "pachyderm.io/job"  # on the Jobs and pods of each job: its ID
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"  # set by Kubernetes on indexed pods
OWN_INDEX = "pachyderm.io/index"  # our own, on the Jobs and pods of a server without Indexed Jobs
PER_INDEX_SINCE = (1, 29)  # the first version with Indexed Jobs and backoffLimitPerIndex on by default
MAX_RESTARTS_ANNOTATION = "pachyderm.io/max-restarts"
# Waiting reasons that never resolve by themselves: the job fails with them.
FATAL_WAITING = {"ErrImageNeverPull", "InvalidImageName"}
# Waiting reasons while the kubelet keeps trying to pull the image: the job stays PULLING.
PULL_WAITING = {"ErrImagePull", "ImagePullBackOff"}
WATCH_SECONDS = 30  # each watch request ends after this; the next resumes from its revision
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass
class _JobEvents:
    """What the watch has seen of one job's pods, as PodEvents."""

    log: EventLog = field(default_factory=EventLog)
    reported: dict[str, PodPhase] = field(default_factory=dict)  # pod name -> last phase reported
    failures: dict[tuple[str, int], int] = field(default_factory=dict)  # (Job name, index) -> failed pods

    def add(self, event: PodEvent) -> None:
        self.log.add(event)
        self.reported[event.name] = event.phase


class KubernetesExecutor:
    def __init__(self, *, api: client.ApiClient, namespace: str, pachd_address: str,
                 base_env: Mapping[str, str], image_pull_policy: str, privileged: bool = False) -> None:
        """`pachd_address` is host:port of the pachd service as pods reach it;
        `privileged` lets pods mount FUSE (PACH_PFS_MODE=fuse)."""
        self._core = client.CoreV1Api(api)
        self._batch = client.BatchV1Api(api)
        self._namespace = namespace
        host, _, port = pachd_address.rpartition(":")
        self._service_env = {"PACHD_PORT_650_TCP_ADDR": host, "PACHD_PORT_650_TCP_PORT": port}
        self._base_env = dict(base_env)
        self._pull_policy = image_pull_policy
        self._privileged = privileged
        self._version = client.VersionApi(api)
        self._indexed: bool | None = None  # whether the server has Indexed Jobs; None until asked
        self._jobs: dict[str, _JobEvents] = {}
        # Jobs deleted: start() creates nothing more for them (job IDs are never reused).
        self._deleted: set[str] = set()
        # Job creates sent and not yet answered, by job: they run on if the caller is cancelled.
        self._creating: dict[str, set[asyncio.Task[Any]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watcher: threading.Thread | None = None
        self._stopping = threading.Event()

    async def recover(self) -> None:
        """Starts the pod watch; running pods carry on and are adopted through it."""
        self._start_watch()

    def _start_watch(self) -> None:
        if self._watcher is None:
            self._loop = asyncio.get_running_loop()
            self._watcher = threading.Thread(target=self._watch_pods, name="kubernetes-pod-watch", daemon=True)
            self._watcher.start()

    async def start(self, spec: JobSpec) -> None:
        self._start_watch()
        if not spec.indices:
            return
        if self._indexed is None:
            self._indexed = await self._has_indexed_jobs()
        jobs = await self._call(self._batch.list_namespaced_job, self._namespace,
                                label_selector=f"{JOB_LABEL}={spec.job_id}")
        if not self._indexed:
            await self._start_per_index(spec, jobs.items)
            return
        if any(not _finished(job) for job in jobs.items):
            return  # its Job runs; Kubernetes replaces its failed pods
        # A job's first Job is named after it; later ones (its Job was deleted
        # or ended while pachd still waits for pods) count up.
        name = _job_name(spec.job_id, len(jobs.items))
        created = await self._create(spec.job_id, self.job_object(spec, name))
        if created is None:
            return
        if created.spec.completion_mode != "Indexed" or created.spec.backoff_limit_per_index is None:
            # The server dropped the fields: its pods have no index. Take it back, and go per index.
            logger.warning("the Kubernetes API server has no Indexed Jobs with backoffLimitPerIndex: "
                           "running one Job per pod")
            await self._delete_job(name)
            self._indexed = False
            await self._start_per_index(spec, [])
            return
        logger.info("job %s: created Kubernetes Job %s with %d pods", spec.job_id, name, spec.pod_count)

    async def _create(self, job_id: str, body: dict[str, Any]) -> Any:
        """Creates the Job `body` of `job_id`; None if the job was deleted, before or meanwhile.

        The create runs on in its own task if the caller is cancelled (a thread
        cannot be stopped); delete() waits for it, and a Job that lands for a job
        deleted meanwhile is deleted here, so none outlives the job's delete().
        """
        if job_id in self._deleted:
            logger.debug("job %s: deleted already; no Kubernetes Job is created for it", job_id)
            return None
        task = asyncio.create_task(self._create_unless_deleted(job_id, body), name=f"create-{body['metadata']['name']}")
        creating = self._creating.setdefault(job_id, set())
        creating.add(task)

        def done(_: asyncio.Task[Any]) -> None:
            if not task.cancelled():
                task.exception()  # retrieved: a caller cancelled meanwhile never will
            creating.discard(task)
            if not creating and self._creating.get(job_id) is creating:
                del self._creating[job_id]

        task.add_done_callback(done)
        return await asyncio.shield(task)

    async def _create_unless_deleted(self, job_id: str, body: dict[str, Any]) -> Any:
        created = await self._call(self._batch.create_namespaced_job, self._namespace, body)
        if job_id not in self._deleted:
            return created
        logger.info("job %s: deleted while its Kubernetes Job %s was created; deleting that", job_id,
                    created.metadata.name)
        await self._delete_job(created.metadata.name)
        return None

    async def _has_indexed_jobs(self) -> bool:
        """Whether the server's version has Indexed Jobs and backoffLimitPerIndex on by default
        (assumed when it does not say; the created Job then tells)."""
        try:
            info = await self._call(self._version.get_code)
        except (ApiException, ValueError):  # refused, or an answer the client cannot read
            return True
        major, minor = re.match(r"\d*", str(info.major)), re.match(r"\d*", str(info.minor))
        if major is None or minor is None or not major.group() or not minor.group():
            return True
        version = (int(major.group()), int(minor.group()))
        if version < PER_INDEX_SINCE:
            logger.info("Kubernetes %s.%s has no Indexed Jobs with backoffLimitPerIndex: one Job per pod",
                        *version)
        return version >= PER_INDEX_SINCE

    async def _start_per_index(self, spec: JobSpec, jobs: list[Any]) -> None:
        """One Job per pod: for each index without a running Job, the next one."""
        for index in spec.indices:
            mine = [job for job in jobs if (job.metadata.labels or {}).get(OWN_INDEX) == str(index)]
            if any(not _finished(job) for job in mine):
                continue
            name = _job_name(f"{spec.job_id}-{index}", len(mine))
            if await self._create(spec.job_id, self.job_object(spec, name, index=index)) is None:
                return
            logger.info("job %s: created Kubernetes Job %s for pod %d", spec.job_id, name, index)

    def job_object(self, spec: JobSpec, name: str, *, index: int | None = None) -> dict[str, Any]:
        """The batch/v1 Job that runs the pods of `spec`: all of them, Indexed; or,
        given an `index`, that one pod's (for a server without Indexed Jobs)."""
        labels = {k: v for k, v in spec.labels.items() if _LABEL_VALUE.match(v) and len(v) <= 63}
        labels[JOB_LABEL] = spec.job_id
        values = {**self._base_env, **spec.env, **self._service_env}
        annotations = {"pachyderm.io/pipeline": spec.pipeline, MAX_RESTARTS_ANNOTATION: str(spec.max_restarts)}
        if index is not None:
            labels[OWN_INDEX] = annotations[OWN_INDEX] = values["PACH_POD_INDEX"] = str(index)
        env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in values.items()]
        env.append({"name": "PACH_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
        container: dict[str, Any] = {
            "name": "user",
            "image": spec.image,
            "imagePullPolicy": self._pull_policy,
            "command": list(spec.command),
            "env": env,
        }
        volumes = []
        if spec.secrets:
            container["volumeMounts"] = [{"name": f"secret-{k}", "mountPath": s.mount_path, "readOnly": True}
                                         for k, s in enumerate(spec.secrets)]
            volumes = [{"name": f"secret-{k}", "secret": {"secretName": s.name}} for k, s in enumerate(spec.secrets)]
        if self._privileged:
            container["securityContext"] = {"privileged": True}
        pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if volumes:
            pod_spec["volumes"] = volumes
        job_spec: dict[str, Any] = {
            "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
        }
        if index is None:
            job_spec.update(parallelism=spec.pod_count, completions=spec.pod_count, completionMode="Indexed",
                            backoffLimitPerIndex=spec.max_restarts)
        else:
            job_spec.update(parallelism=1, completions=1, backoffLimit=spec.max_restarts)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": self._namespace, "labels": labels, "annotations": annotations},
            "spec": job_spec,
        }

    def events(self, job_id: str) -> AsyncIterator[PodEvent]:
        return self._jobs.setdefault(job_id, _JobEvents()).log.follow()

    async def logs(self, job_id: str) -> AsyncIterator[LogLine]:
        pods = await self._call(self._core.list_namespaced_pod, self._namespace,
                                label_selector=f"{JOB_LABEL}={job_id}")
        # Creation times have whole seconds: the order the watch saw pods start is finer.
        seen = {e.name: k for k, e in enumerate(self._jobs[job_id].log.events)} if job_id in self._jobs else {}
        attempts: dict[int, int] = {}
        for pod in sorted(pods.items, key=lambda p: (_index(p), seen.get(p.metadata.name, len(seen)),
                                                     p.metadata.creation_timestamp, p.metadata.name)):
            index = _index(pod)
            attempt = attempts[index] = attempts.get(index, -1) + 1
            try:
                response = await self._call(self._core.read_namespaced_pod_log, pod.metadata.name,
                                            self._namespace, _preload_content=False)
            except Unavailable:
                raise
            except ApiException:  # not started yet, or already gone
                continue
            for line in response.data.splitlines():
                yield LogLine(index, attempt, line)

    async def delete(self, job_id: str) -> None:
        # First: from now on no Job is created for it. Then what exists goes, and
        # last the creates already sent are awaited (each deletes the Job it made).
        self._deleted.add(job_id)
        selector = f"{JOB_LABEL}={job_id}"
        jobs = await self._call(self._batch.list_namespaced_job, self._namespace, label_selector=selector)
        for job in jobs.items:
            await self._delete_job(job.metadata.name)
        await asyncio.gather(*self._creating.get(job_id, ()), return_exceptions=True)
        self._jobs.pop(job_id, None)

    async def _delete_job(self, name: str) -> None:
        try:  # Background: the garbage collector removes the Job's pods too
            await self._call(self._batch.delete_namespaced_job, name, self._namespace,
                             propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise

    def reserve(self, pods: int) -> None:
        """Pods start with their jobs here: nothing to keep ready."""

    def output_finished(self, repo: str, commit: str) -> None:
        """Pods here copy their previous output in (the shim's layout): nothing to lay out ahead."""

    def output_dropped(self, repo: str) -> None:
        """Nothing is laid out here."""

    async def node_count(self) -> int:
        """Nodes that are Ready and not cordoned."""
        nodes = await self._call(self._core.list_node)
        return max(1, sum(1 for node in nodes.items if _schedulable(node)))

    async def close(self) -> None:
        self._stopping.set()
        await asyncio.gather(*(task for tasks in self._creating.values() for task in tasks), return_exceptions=True)
        if self._watcher is not None:
            await asyncio.to_thread(self._watcher.join, 5.0)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except ApiException as err:
            if err.status is None or err.status >= 500:
                raise Unavailable(f"the Kubernetes API failed: {err.reason}") from err
            raise
        except OSError as err:  # connection refused, DNS, TLS: urllib3's errors are OSErrors
            raise Unavailable(f"cannot reach the Kubernetes API: {err}") from err

    # The watch thread

    def _watch_pods(self) -> None:
        """Follows every job pod; each request resumes from the last revision seen."""
        revision = ""
        while not self._stopping.is_set():
            watcher = watch.Watch()
            options: dict[str, Any] = {"label_selector": JOB_LABEL, "timeout_seconds": WATCH_SECONDS}
            if revision:
                options["resource_version"] = revision
            try:
                for event in watcher.stream(self._core.list_namespaced_pod, self._namespace, **options):
                    pod = event["object"]
                    revision = pod.metadata.resource_version or revision
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(self._on_pod, event["type"], pod)
                    if self._stopping.is_set():
                        break
            except ApiException as err:
                if err.status == 410:  # our revision is too old: list afresh (duplicates are ignored)
                    revision = ""
                else:
                    logger.warning("watching pods failed (%s); retrying", err.reason)
                    self._stopping.wait(1.0)
            except Exception as err:  # noqa: BLE001 - the API server went away; keep trying
                logger.warning("watching pods failed (%s); retrying", err)
                self._stopping.wait(1.0)
            finally:
                watcher.stop()

    def _on_pod(self, kind: str, pod: Any) -> None:
        """Turns one watch event into the job's next PodEvents (each once)."""
        labels = pod.metadata.labels or {}
        job_id = labels.get(JOB_LABEL)
        if job_id is None or _index(pod) < 0 or (kind == "DELETED" and job_id not in self._jobs):
            return
        job = self._jobs.setdefault(job_id, _JobEvents())
        name, index = pod.metadata.name, _index(pod)
        last = job.reported.get(name)
        if last in (PodPhase.SUCCEEDED, PodPhase.CRASHED, PodPhase.GAVE_UP):
            return
        if last is None:
            job.add(PodEvent(job_id, index, name, PodPhase.STARTED))
        phase = pod.status.phase if pod.status else None
        if phase == "Succeeded":
            job.add(PodEvent(job_id, index, name, PodPhase.SUCCEEDED))
        elif phase == "Failed" or kind == "DELETED":
            reason = _failure(pod) if phase == "Failed" else "the pod was deleted"
            key = (labels.get("batch.kubernetes.io/job-name") or labels.get("job-name") or "", index)
            job.failures[key] = failures = job.failures.get(key, 0) + 1
            limit = int((pod.metadata.annotations or {}).get(MAX_RESTARTS_ANNOTATION, "3"))
            job.add(PodEvent(job_id, index, name, PodPhase.GAVE_UP if failures > limit else PodPhase.CRASHED, reason))
        elif (waiting := _waiting(pod, FATAL_WAITING)) is not None:
            job.add(PodEvent(job_id, index, name, PodPhase.GAVE_UP, waiting))
        elif (waiting := _waiting(pod, PULL_WAITING)) is not None and last is not PodPhase.PULLING:
            job.add(PodEvent(job_id, index, name, PodPhase.PULLING, waiting))


def _job_name(job_id: str, earlier: int) -> str:
    return f"pach-{job_id}" if earlier == 0 else f"pach-{job_id}-{earlier}"


def _index(pod: Any) -> int:
    annotations = pod.metadata.annotations or {}
    value = annotations.get(INDEX_ANNOTATION) or annotations.get(OWN_INDEX) or ""
    return int(value) if value.isdigit() else -1


def _finished(job: Any) -> bool:
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def _schedulable(node: Any) -> bool:
    if node.spec is not None and node.spec.unschedulable:
        return False
    conditions = (node.status.conditions if node.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _failure(pod: Any) -> str:
    """Why a pod failed, in the cluster's words: the container's exit, or the pod's reason."""
    for status in (pod.status.container_statuses or []):
        ended = status.state.terminated if status.state else None
        if ended is not None:
            said = f" ({ended.reason})" if ended.reason else ""
            return f"exit code {ended.exit_code}{said}" if ended.exit_code else f"{ended.reason or 'failed'}"
    return pod.status.reason or pod.status.message or "the pod failed"


def _waiting(pod: Any, reasons: set[str]) -> str | None:
    """Why the pod's container waits, if for one of `reasons`."""
    for status in ((pod.status.container_statuses if pod.status else None) or []):
        waiting = status.state.waiting if status.state else None
        if waiting is not None and waiting.reason in reasons:
            return f"{waiting.reason}: {waiting.message or status.image}"
    return None
