"""A Kubernetes API server for tests, with a Job controller and a kubelet.

It speaks the part of the real HTTP API that pachd's executor and the
official `kubernetes` client use (pods with list, watch, logs and delete;
batch/v1 Jobs; secrets; nodes), with the API's status objects and codes, and
acts out what a cluster does with a Job: an Indexed Job's controller creates
one pod per index and replaces a failed pod up to backoffLimitPerIndex times;
the kubelet checks the image against the pull policy, then runs the pod's
container command as a local process with the pod's environment, in private
namespaces where /pfs is the pod's own directory and secret volumes are bound
at their mount paths. Every Job created is validated against the real
Kubernetes OpenAPI schema first (422, like the API server, when invalid).

`version` is the server's (GET /version): one older than 1.21 has no Indexed
Jobs and one older than 1.29 no backoffLimitPerIndex, and, like such a real
server, it drops those fields from a Job silently and runs the Job plain:
pods without an index, failures counted against backoffLimit for the Job.
`indexed_jobs=False` makes a server of any version do so (as one whose
feature gates are off would).
"""

from __future__ import annotations

import base64
import copy
import json
import random
import re
import string
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import kubernetes_validate

from tests.support.local_pods import kill_group, local_argv, serve_http, stop_http
from tests.support.ports import free_port

Object = dict[str, Any]
INDEX = "batch.kubernetes.io/job-completion-index"
POD_PATH = "/usr/local/bin:/usr/bin:/bin"


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class FakeKubernetes:
    """Start it, point a kubeconfig at it (write_kubeconfig), stop it."""

    def __init__(self, root: Path, *, nodes: list[Object] | None = None,
                 images: set[str] | None = None, missing: set[str] | None = None,
                 version: tuple[int, int] = (1, 30), indexed_jobs: bool = True) -> None:
        self.root = root
        self.version = version
        self.indexed_jobs = indexed_jobs
        self.port = free_port()
        self.nodes = nodes if nodes is not None else [node("node-1")]
        self.images = set(images or ())  # present on the node; others are pulled unless policy is Never
        self.missing = set(missing or ())  # in no registry: pulling them fails, again and again
        self.created_jobs: list[Object] = []  # every Job body as the client sent it
        self._objects: dict[tuple[str, str, str], Object] = {}  # (resource, namespace, name)
        self._history: list[tuple[int, str, str, Object]] = []  # (revision, resource, event, object)
        self._revision = 0
        self._changed = threading.Condition()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}  # pod name -> its process
        self._server: ThreadingHTTPServer | None = None
        self._stopping = False
        self._holding_creates = False  # see hold_job_creates
        self.held_creates = 0  # Job creates that waited for a listing of Jobs
        self.landed_creates = 0  # ... and were then stored
        self._job_lists = 0  # listings of Jobs answered

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeKubernetes:
        fake = self

        class Handler(_Handler):
            api = fake

        self._server = serve_http(self.port, Handler, "fake-kubernetes")
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            processes = list(self._processes.values())
        for process in processes:
            kill_group(process)
        stop_http(self._server)

    def write_kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": "default"}}],
        }
        path.write_text(json.dumps(config))
        return path

    # What tests look at

    def list(self, resource: str, namespace: str = "default", selector: str = "") -> list[Object]:
        with self._changed:
            return [copy.deepcopy(o) for (r, ns, _), o in sorted(self._objects.items())
                    if r == resource and ns == namespace and matches(selector, o)]

    def wait_for(self, test: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = test()
                if result:
                    return result
                if time.monotonic() > deadline:
                    raise TimeoutError("the fake cluster never got there")
                self._changed.wait(0.5)

    def hold_job_creates(self) -> None:
        """From now on each Job create waits, not yet stored, until a listing of Jobs
        has been answered: a create still on its way while someone looks."""
        with self._changed:
            self._holding_creates = True

    def kill_pod(self, name: str) -> None:
        """SIGKILL of the pod's process, as the kernel's OOM killer would."""
        with self._changed:
            process = self._processes.get(name)
        if process is not None:
            kill_group(process)

    # Storage, with a revision per change and a history for watches

    def _record(self, resource: str, event: str, obj: Object) -> None:
        """Stores (or drops, for DELETED) an object; the caller holds the lock."""
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        key = (resource, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        self._history.append((self._revision, resource, event, copy.deepcopy(obj)))
        self._changed.notify_all()

    def _get(self, resource: str, namespace: str, name: str) -> Object:
        found = self._objects.get((resource, namespace, name))
        if found is None:
            raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
        return found

    # The API

    def create(self, resource: str, namespace: str, body: Object) -> Object:
        if resource == "jobs":
            try:
                kubernetes_validate.validate(body, kubernetes_validate.latest_version(), strict=True)
            except kubernetes_validate.ValidationError as err:
                raise ApiError(422, "Invalid", f"Job is invalid: {err.message}") from None
            self.created_jobs.append(copy.deepcopy(body))
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        meta.update(namespace=namespace, uid=_uid(), creationTimestamp=_now())
        with self._changed:
            if resource == "jobs" and self._holding_creates:
                self.held_creates += 1
                self._changed.notify_all()
                lists = self._job_lists
                while self._job_lists == lists and not self._stopping:
                    self._changed.wait()
                self.landed_creates += 1
            if (resource, namespace, meta["name"]) in self._objects:
                raise ApiError(409, "AlreadyExists", f'{resource} "{meta["name"]}" already exists')
            if resource == "jobs":
                if self.version < (1, 21) or not self.indexed_jobs:
                    obj["spec"].pop("completionMode", None)
                if self.version < (1, 29) or not self.indexed_jobs:
                    obj["spec"].pop("backoffLimitPerIndex", None)
                obj["status"] = {"active": 0, "succeeded": 0, "failed": 0}
                obj["spec"].setdefault("backoffLimit", 2147483647 if "backoffLimitPerIndex" in obj["spec"] else 6)
            self._record(resource, "ADDED", obj)
            if resource == "jobs":
                self._run_job(obj)
            return copy.deepcopy(obj)

    def delete(self, resource: str, namespace: str, name: str, options: Object) -> Object:
        with self._changed:
            obj = self._get(resource, namespace, name)
            self._record(resource, "DELETED", obj)
            pods: list[Object] = []
            if resource == "pods":
                pods = [obj]
            elif resource == "jobs" and options.get("propagationPolicy") in ("Background", "Foreground"):
                pods = [p for (r, ns, _), p in list(self._objects.items())
                        if r == "pods" and ns == namespace and p["metadata"]["labels"].get("job-name") == name]
                for pod in pods:
                    self._record("pods", "DELETED", pod)
            # The API's default for Jobs is to orphan their pods: they keep running.
            processes = [self._processes.pop(p["metadata"]["name"], None) for p in pods]
        for process in processes:
            if process is not None:
                kill_group(process)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": name}}

    def pod_log(self, namespace: str, name: str) -> bytes:
        with self._changed:
            self._get("pods", namespace, name)
        log = self.root / "pods" / name / "log"
        if not log.exists():
            raise ApiError(400, "BadRequest", f'container "user" in pod "{name}" is waiting to start')
        return log.read_bytes()

    def watch(self, resource: str, namespace: str, selector: str, since: str, seconds: float) -> Iterator[Object]:
        """Events after revision `since`; with none, the current objects as ADDED first."""
        deadline = time.monotonic() + seconds
        with self._changed:
            if since:
                position = next((k for k, h in enumerate(self._history) if h[0] > int(since)), len(self._history))
                backlog = []
            else:
                position = len(self._history)
                backlog = [{"type": "ADDED", "object": copy.deepcopy(o)}
                           for (r, ns, _), o in sorted(self._objects.items())
                           if r == resource and ns == namespace and matches(selector, o)]
        yield from backlog
        while True:
            with self._changed:
                while position >= len(self._history) and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._changed.wait(remaining)
                if self._stopping:
                    return
                fresh = self._history[position:]
                position = len(self._history)
            for _, kind, event, obj in fresh:
                if kind == resource and obj["metadata"].get("namespace") == namespace and matches(selector, obj):
                    yield {"type": event, "object": obj}

    # The Job controller (called with the lock held)

    def _run_job(self, job: Object) -> None:
        spec = job["spec"]
        indexed = spec.get("completionMode") == "Indexed"
        for index in range(min(spec.get("parallelism", 1), spec["completions"])):
            self._create_pod(job, index if indexed else None)
        job["status"]["active"] = spec["completions"]
        self._record("jobs", "MODIFIED", job)

    def _create_pod(self, job: Object, index: int | None) -> None:
        template = copy.deepcopy(job["spec"]["template"])
        meta = template.setdefault("metadata", {})
        suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = f"{job['metadata']['name']}-{suffix}" if index is None else f"{job['metadata']['name']}-{index}-{suffix}"
        meta.update(name=name, namespace=job["metadata"]["namespace"], uid=_uid(), creationTimestamp=_now())
        meta.setdefault("labels", {}).update({"job-name": job["metadata"]["name"],
                                              "batch.kubernetes.io/job-name": job["metadata"]["name"]})
        meta.setdefault("annotations", {})
        if index is not None:
            meta["labels"][INDEX] = meta["annotations"][INDEX] = str(index)
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"],
                                    "uid": job["metadata"]["uid"], "controller": True}]
        if index is not None:
            template["spec"]["hostname"] = f"{job['metadata']['name']}-{index}"
        template["spec"]["nodeName"] = self.nodes[0]["metadata"]["name"]
        pod = {"apiVersion": "v1", "kind": "Pod", **template, "status": {"phase": "Pending"}}
        self._record("pods", "ADDED", pod)
        threading.Thread(target=self._kubelet, args=(copy.deepcopy(pod),), name=f"kubelet-{name}", daemon=True).start()

    def _pod_ended(self, pod: Object) -> None:
        """A pod of a Job reached Succeeded or Failed: replace it, or account for its index."""
        owner = pod["metadata"]["labels"]["job-name"]
        job = self._objects.get(("jobs", pod["metadata"]["namespace"], owner))
        if job is None:
            return
        spec, status = job["spec"], job["status"]
        if INDEX not in pod["metadata"]["annotations"]:
            return self._plain_pod_ended(job, pod)
        index = int(pod["metadata"]["annotations"][INDEX])
        if pod["status"]["phase"] == "Succeeded":
            status["succeeded"] += 1
            status["completedIndexes"] = _ranges(_indexes(status.get("completedIndexes", "")) | {index})
        else:
            status["failed"] += 1
            failures = sum(1 for _, r, e, o in self._history if r == "pods" and e == "MODIFIED"
                           and o["metadata"]["labels"].get("job-name") == owner
                           and o["metadata"]["annotations"][INDEX] == str(index) and o["status"]["phase"] == "Failed")
            if failures <= spec.get("backoffLimitPerIndex", spec["backoffLimit"]):
                self._record("jobs", "MODIFIED", job)
                self._create_pod(job, index)
                return
            status["failedIndexes"] = _ranges(_indexes(status.get("failedIndexes", "")) | {index})
        done = _indexes(status.get("completedIndexes", "")) | _indexes(status.get("failedIndexes", ""))
        status["active"] = spec["completions"] - len(done)
        if len(done) == spec["completions"]:
            kind = "Failed" if status.get("failedIndexes") else "Complete"
            status["conditions"] = [{"type": kind, "status": "True", "lastTransitionTime": _now()}]
        self._record("jobs", "MODIFIED", job)

    def _plain_pod_ended(self, job: Object, pod: Object) -> None:
        """The same for a Job that is not Indexed: any pod may complete it; failures count for the Job."""
        spec, status = job["spec"], job["status"]
        if pod["status"]["phase"] == "Succeeded":
            status["succeeded"] += 1
        else:
            status["failed"] += 1
            if status["failed"] <= spec["backoffLimit"]:
                self._record("jobs", "MODIFIED", job)
                self._create_pod(job, None)
                return
        status["active"] = 0 if status["failed"] > spec["backoffLimit"] else spec["completions"] - status["succeeded"]
        if status["failed"] > spec["backoffLimit"] or status["succeeded"] >= spec["completions"]:
            kind = "Complete" if status["succeeded"] >= spec["completions"] else "Failed"
            status["conditions"] = [{"type": kind, "status": "True", "lastTransitionTime": _now()}]
        self._record("jobs", "MODIFIED", job)

    # The kubelet (a thread per pod)

    def _kubelet(self, pod: Object) -> None:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        container = pod["spec"]["containers"][0]
        image, policy = container["image"], container.get("imagePullPolicy", "IfNotPresent")
        if policy == "Never" and image not in self.images:
            message = f'Container image "{image}" is not present with pull policy of Never'
            self._set_status(pod, "Pending", {"waiting": {"reason": "ErrImageNeverPull", "message": message}})
            return
        if image in self.missing and image not in self.images:
            message = f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found'
            self._set_status(pod, "Pending", {"waiting": {"reason": "ErrImagePull", "message": message}})
            return
        self.images.add(image)  # pulled
        pod_dir = self.root / "pods" / name
        (pod_dir / "pfs").mkdir(parents=True, exist_ok=True)
        try:
            env = self._environment(pod, container)
            binds = self._volumes(pod, container, pod_dir)
        except ApiError as err:
            self._set_status(pod, "Pending", {"waiting": {"reason": "CreateContainerConfigError",
                                                           "message": err.message}})
            return
        argv = [*container.get("command", []), *container.get("args", [])]
        with self._changed:
            if ("pods", namespace, name) not in self._objects:
                return  # deleted before it started
            with open(pod_dir / "log", "ab") as log:
                process = subprocess.Popen(local_argv(argv, pod_dir / "pfs", binds), env=env, stdout=log,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           start_new_session=True)
            self._processes[name] = process
            started = _now()
            self._set_status(pod, "Running", {"running": {"startedAt": started}}, locked=True)
        code = process.wait()
        with self._changed:
            if self._processes.pop(name, None) is None or ("pods", namespace, name) not in self._objects:
                return  # deleted meanwhile
            exit_code = code if code >= 0 else 128 - code
            ended = {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                     "startedAt": started, "finishedAt": _now()}
            self._set_status(pod, "Succeeded" if exit_code == 0 else "Failed", {"terminated": ended}, locked=True)
            self._pod_ended(self._objects[("pods", namespace, name)])

    def _set_status(self, pod: Object, phase: str, state: Object, *, locked: bool = False) -> None:
        if not locked:
            with self._changed:
                return self._set_status(pod, phase, state, locked=True)
        current = self._objects.get(("pods", pod["metadata"]["namespace"], pod["metadata"]["name"]))
        if current is None:
            return None
        container = current["spec"]["containers"][0]
        current["status"] = {
            "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": _now(),
            "containerStatuses": [{"name": container["name"], "image": container["image"], "imageID": "",
                                   "ready": phase == "Running", "restartCount": 0, "state": state}],
        }
        self._record("pods", "MODIFIED", current)
        return None

    def _environment(self, pod: Object, container: Object) -> dict[str, str]:
        """The container's env as the kubelet builds it: values, field and secret references."""
        meta = pod["metadata"]
        env = {"PATH": POD_PATH, "HOSTNAME": pod["spec"].get("hostname", meta["name"]),
               "JOB_COMPLETION_INDEX": meta["annotations"].get(INDEX, "")}
        fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "status.podIP": "127.0.0.1", "spec.nodeName": pod["spec"].get("nodeName", "")}
        for var in container.get("env", []):
            source = var.get("valueFrom")
            if source is None:
                env[var["name"]] = var.get("value", "")
            elif "fieldRef" in source:
                env[var["name"]] = fields[source["fieldRef"]["fieldPath"]]
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                with self._changed:
                    secret = self._get("secrets", meta["namespace"], ref["name"])
                env[var["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        return env

    def _volumes(self, pod: Object, container: Object, pod_dir: Path) -> dict[Path, Path]:
        """Writes each secret volume's files; returns host directory -> mount path."""
        sources: dict[str, Path] = {}
        for volume in pod["spec"].get("volumes", []):
            if "secret" in volume:
                with self._changed:
                    secret = self._get("secrets", pod["metadata"]["namespace"], volume["secret"]["secretName"])
                folder = pod_dir / "volumes" / volume["name"]
                folder.mkdir(parents=True, exist_ok=True)
                for key, value in secret.get("data", {}).items():
                    (folder / key).write_bytes(base64.b64decode(value))
                sources[volume["name"]] = folder
        return {sources[m["name"]]: Path(m["mountPath"]) for m in container.get("volumeMounts", [])
                if m["name"] in sources}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api: FakeKubernetes
    ROUTES = [
        (re.compile(r"^/version/?$"), "version", False),
        (re.compile(r"^/api/v1/nodes$"), "nodes", False),
        (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<resource>pods|secrets)(/(?P<name>[^/]+))?$"), "", False),
        (re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log$"), "pods", True),
        (re.compile(r"^/apis/batch/v1/namespaces/(?P<ns>[^/]+)/(?P<resource>jobs)(/(?P<name>[^/]+))?$"), "", False),
    ]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        try:
            for pattern, fixed, is_log in self.ROUTES:
                found = pattern.match(url.path)
                if found is None:
                    continue
                parts = found.groupdict()
                resource, namespace, name = fixed or parts["resource"], parts.get("ns") or "", parts.get("name")
                if is_log:
                    return self._send(200, self.api.pod_log(namespace, name or ""), "text/plain")
                return self._resource(method, resource, namespace, name, query, body)
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({url.path})")
        except ApiError as err:
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": err.message, "reason": err.reason, "code": err.code}
            self._send(err.code, json.dumps(status).encode())

    def _resource(self, method: str, resource: str, namespace: str, name: str | None,
                  query: dict[str, str], body: Object) -> None:
        api = self.api
        if resource == "version":
            major, minor = api.version
            info = {"major": str(major), "minor": str(minor), "gitVersion": f"v{major}.{minor}.0",
                    "gitCommit": "0" * 40, "gitTreeState": "clean", "buildDate": "2021-01-01T00:00:00Z",
                    "goVersion": "go1.15", "compiler": "gc", "platform": "linux/amd64"}
            return self._send(200, json.dumps(info).encode())
        if resource == "nodes":
            items = copy.deepcopy(api.nodes)
            return self._send(200, json.dumps({"kind": "NodeList", "apiVersion": "v1", "metadata": {},
                                               "items": items}).encode())
        if method == "POST" and name is None:
            return self._send(201, json.dumps(api.create(resource, namespace, body)).encode())
        if method == "DELETE" and name is not None:
            options = {**body, **{k: v for k, v in query.items() if k == "propagationPolicy"}}  # either place
            return self._send(200, json.dumps(api.delete(resource, namespace, name, options)).encode())
        if method != "GET":
            raise ApiError(405, "MethodNotAllowed", f"{method} is not supported here")
        if name is not None:
            with api._changed:
                found = copy.deepcopy(api._get(resource, namespace, name))
            return self._send(200, json.dumps(found).encode())
        selector = query.get("labelSelector", "")
        if query.get("watch") in ("true", "1", "True"):
            events = api.watch(resource, namespace, selector, query.get("resourceVersion", ""),
                               float(query.get("timeoutSeconds") or 1800))
            return self._stream(events)
        kind = {"pods": "PodList", "jobs": "JobList", "secrets": "SecretList"}[resource]
        with api._changed:
            revision = str(api._revision)
        items = api.list(resource, namespace, selector)
        if resource == "jobs":
            with api._changed:
                api._job_lists += 1
                api._changed.notify_all()
        listed = {"kind": kind, "apiVersion": "batch/v1" if resource == "jobs" else "v1",
                  "metadata": {"resourceVersion": revision}, "items": items}
        self._send(200, json.dumps(listed).encode())

    def _send(self, code: int, data: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Iterator[Object]) -> None:
        """A watch: one JSON event per line, in chunks, as the API server sends them."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def node(name: str, *, ready: bool = True, unschedulable: bool = False) -> Object:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {}},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def matches(selector: str, obj: Object) -> bool:
    """Equality- and existence-based label selectors: a=b, a!=b, a, !a."""
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.split("==" if "==" in term else "=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uid() -> str:
    return "".join(random.choices("0123456789abcdef", k=32))


def _indexes(ranges: str) -> set[int]:
    found: set[int] = set()
    for part in filter(None, ranges.split(",")):
        first, _, last = part.partition("-")
        found.update(range(int(first), int(last or first) + 1))
    return found


def _ranges(indexes: set[int]) -> str:
    return ",".join(str(k) for k in sorted(indexes))
