"""A Docker Engine for tests: the real HTTP API, containers as local processes.

It speaks the part of the Engine API that the `docker` client uses for
pachd's executor (ping and version; image inspect and pull; container
create, start, wait, inspect, list with label filters, logs in the
multiplexed stream format, kill and remove), with the engine's status codes
and error messages, under any /v1.NN prefix or none. Like a runtime, it runs
a started container's command as a local process with the container's
environment, in private namespaces where /pfs is the container's own
directory; `job-shim` is this virtualenv's. An ExtraHosts entry
"name:host-gateway" makes environment values naming that host point at
127.0.0.1, which is what the host gateway is here.

Tests decide which images are present (`images`), which cannot be pulled
(`unpullable`) and which crash when run (`crashing`), look at what was
created and pulled, and kill a container's process as the kernel would.
"""

from __future__ import annotations

import copy
import json
import os
import random
import re
import struct
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from tests.support.local_pods import kill_group, local_argv, serve_http, stop_http
from tests.support.ports import free_port

Object = dict[str, Any]
API_VERSION = "1.45"
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"  # the PATH our fake images set
_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


class EngineError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def image_ref(name: str) -> str:
    """The engine's full form of an image name: a tag (latest) unless it has one or a digest."""
    if "@" in name:
        return name
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


@dataclass
class Container:
    id: str
    name: str
    body: Object  # the create request's JSON, as the client sent it
    created: str
    pod_dir: Path
    status: str = "created"  # created, running, exited
    exit_code: int = 0
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    process: subprocess.Popen[bytes] | None = None
    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (1 stdout | 2 stderr, data)
    removed: bool = False

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body.get("Labels") or {})

    def inspect(self) -> Object:
        running = self.status == "running"
        config = {"Hostname": self.id[:12], "Image": self.body.get("Image", ""), "Cmd": self.body.get("Cmd"),
                  "Env": list(self.body.get("Env") or []), "Labels": self.labels, "Tty": False,
                  "AttachStdout": True, "AttachStderr": True, "OpenStdin": False}
        return {
            "Id": self.id, "Created": self.created, "Name": "/" + self.name,
            "Path": (self.body.get("Cmd") or [""])[0], "Args": (self.body.get("Cmd") or [])[1:],
            "Image": "sha256:" + self.id[::-1], "RestartCount": 0, "Driver": "overlay2",
            "State": {"Status": self.status, "Running": running, "Paused": False, "Restarting": False,
                      "OOMKilled": False, "Dead": False, "Pid": self.process.pid if running and self.process else 0,
                      "ExitCode": self.exit_code, "Error": "", "StartedAt": self.started_at,
                      "FinishedAt": self.finished_at},
            "Config": config, "HostConfig": copy.deepcopy(self.body.get("HostConfig") or {}),
        }

    def summary(self) -> Object:
        return {"Id": self.id, "Names": ["/" + self.name], "Image": self.body.get("Image", ""),
                "ImageID": "sha256:" + self.id[::-1], "Command": " ".join(self.body.get("Cmd") or []),
                "Created": int(time.time()), "Labels": self.labels, "State": self.status,
                "Status": "Up" if self.status == "running" else f"Exited ({self.exit_code})"}


class FakeDocker:
    """Start it, point DOCKER_HOST at `url`, stop it."""

    def __init__(self, root: Path, *, images: set[str] | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.images = {image_ref(i) for i in images or ()}  # present on the engine
        self.unpullable: set[str] = set()  # pulls of these fail as from a registry without them
        self.crashing: dict[str, int] = {}  # image -> the exit code its containers end with at once
        self.pulls: list[str] = []  # every image pulled, in order
        self.pull_attempts: list[str] = []  # every pull asked for, also those that failed
        self.created: list[Object] = []  # every create request: {"name": ..., "body": ...}
        self._containers: dict[str, Container] = {}  # id -> container
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._stopping = False

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> FakeDocker:
        fake = self

        class Handler(_Handler):
            engine = fake

        self._server = serve_http(self.port, Handler, "fake-docker")
        return self

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            processes = [c.process for c in self._containers.values() if c.process is not None]
        for process in processes:
            kill_group(process)
        stop_http(self._server)

    # What tests look at and do

    def containers(self, label: str = "") -> list[Object]:
        """Inspect views of the containers with `label` (key or key=value), oldest first."""
        with self._changed:
            return [c.inspect() for c in self._containers.values() if _has_label(c, label)]

    def wait_for(self, test: Callable[[], Any], timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = test()
                if result:
                    return result
                if time.monotonic() > deadline:
                    raise TimeoutError("the fake engine never got there")
                self._changed.wait(0.5)

    def kill_process(self, name: str) -> None:
        """SIGKILL of the container's process, as the kernel's OOM killer would."""
        with self._changed:
            container = self._find(name)
            process = container.process if container.status == "running" else None
        if process is not None:
            kill_group(process)

    # The engine

    def _find(self, ref: str) -> Container:
        """A container by ID, unique ID prefix or name; the caller holds the lock."""
        ref = ref.lstrip("/")
        if ref in self._containers:
            return self._containers[ref]
        for container in self._containers.values():
            if container.name == ref:
                return container
        matching = [c for c in self._containers.values() if c.id.startswith(ref)] if len(ref) >= 4 else []
        if len(matching) == 1:
            return matching[0]
        raise EngineError(404, f"No such container: {ref}")

    def inspect_image(self, name: str) -> Object:
        ref = image_ref(name)
        with self._changed:
            if ref not in self.images:
                raise EngineError(404, f"No such image: {ref}")
        return {"Id": "sha256:" + format(abs(hash(ref)), "x").rjust(64, "0"), "RepoTags": [ref],
                "Config": {"Env": [f"PATH={IMAGE_PATH}"]}, "Os": "linux", "Architecture": "amd64"}

    def pull(self, repository: str, tag: str) -> str:
        ref = image_ref(f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag or 'latest'}")
        with self._changed:
            self.pull_attempts.append(ref)
            if ref in self.unpullable:
                raise EngineError(404, f"pull access denied for {repository}, repository does not exist "
                                       "or may require 'docker login': denied: requested access to the resource is denied")
            self.images.add(ref)
            self.pulls.append(ref)
            self._changed.notify_all()
        return ref

    def create(self, name: str, body: Object) -> str:
        if name and not _NAME.match(name):
            raise EngineError(400, f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        image = body.get("Image") or ""
        with self._changed:
            if image_ref(image) not in self.images:
                raise EngineError(404, f"No such image: {image_ref(image)}")
            container_id = "".join(random.choices("0123456789abcdef", k=64))
            name = name.lstrip("/") or f"fake_{container_id[:8]}"
            taken = next((c for c in self._containers.values() if c.name == name), None)
            if taken is not None:
                raise EngineError(409, f'Conflict. The container name "/{name}" is already in use by container '
                                       f'"{taken.id}". You have to remove (or rename) that container to be able '
                                       "to reuse that name.")
            self.created.append({"name": name, "body": copy.deepcopy(body)})
            self._containers[container_id] = Container(container_id, name, copy.deepcopy(body), _now(),
                                                       self.root / "containers" / container_id)
            self._changed.notify_all()
            return container_id

    def start_container(self, ref: str) -> bool:
        """Runs the container's command; False if it was running already."""
        with self._changed:
            container = self._find(ref)
            if container.status == "running":
                return False
            if container.status != "created":
                raise EngineError(500, "cannot restart an exited container in this fake engine")
            argv = self._argv(container)
            env = self._environment(container)
            try:
                process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, start_new_session=True)
            except OSError as err:
                raise EngineError(400, f"failed to create task for container: exec: {err}") from None
            container.process, container.status, container.started_at = process, "running", _now()
            self._changed.notify_all()
        readers = [threading.Thread(target=self._read, args=(container, stream, pipe), daemon=True)
                   for stream, pipe in ((1, process.stdout), (2, process.stderr))]
        for reader in readers:
            reader.start()
        threading.Thread(target=self._reap, args=(container, process, readers), daemon=True,
                         name=f"fake-docker-{container.name}").start()
        return True

    def _argv(self, container: Container) -> list[str]:
        image = image_ref(container.body.get("Image") or "")
        if image in self.crashing:
            return ["/bin/sh", "-c", f"echo 'fake engine: {image} crashes' >&2; exit {self.crashing[image]}"]
        argv = [*(container.body.get("Entrypoint") or []), *(container.body.get("Cmd") or [])]
        (container.pod_dir / "pfs").mkdir(parents=True, exist_ok=True)
        return local_argv(argv, container.pod_dir / "pfs")

    def _environment(self, container: Container) -> dict[str, str]:
        """The image's environment, then the container's; host-gateway names become 127.0.0.1."""
        env = {"PATH": IMAGE_PATH, "HOSTNAME": container.id[:12]}
        if os.environ.get("PYTHONPATH"):  # our images carry the code under test
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
        for item in container.body.get("Env") or []:
            key, _, value = item.partition("=")
            env[key] = value
        hosts = dict(h.split(":", 1) for h in (container.body.get("HostConfig") or {}).get("ExtraHosts") or [])
        gateways = {host for host, address in hosts.items() if address == "host-gateway"}
        return {k: "127.0.0.1" if v in gateways else v for k, v in env.items()}

    def _read(self, container: Container, stream: int, pipe: Any) -> None:
        while chunk := os.read(pipe.fileno(), 65536):
            with self._changed:
                container.frames.append((stream, chunk))
        pipe.close()

    def _reap(self, container: Container, process: subprocess.Popen[bytes], readers: list[threading.Thread]) -> None:
        code = process.wait()
        for reader in readers:
            reader.join()
        with self._changed:
            container.exit_code = code if code >= 0 else 128 - code
            container.status, container.finished_at = "exited", _now()
            self._changed.notify_all()

    def wait(self, ref: str) -> int:
        with self._changed:
            container = self._find(ref)
            while container.status != "exited" and not container.removed:
                if self._stopping:
                    raise EngineError(500, "the engine is shutting down")
                self._changed.wait()
            return container.exit_code

    def logs(self, ref: str, stdout: bool, stderr: bool) -> bytes:
        wanted = {1} if stdout else set()
        if stderr:
            wanted.add(2)
        with self._changed:
            frames = list(self._find(ref).frames)
        return b"".join(struct.pack(">BxxxL", stream, len(data)) + data for stream, data in frames if stream in wanted)

    def kill(self, ref: str) -> None:
        with self._changed:
            container = self._find(ref)
            if container.status != "running":
                raise EngineError(409, f"Cannot kill container: {ref}: Container {container.id} is not running")
            process = container.process
        if process is not None:
            kill_group(process)

    def remove(self, ref: str, force: bool) -> None:
        with self._changed:
            container = self._find(ref)
            if container.status == "running" and not force:
                raise EngineError(409, f"You cannot remove a running container {container.id}. Stop the "
                                       "container before attempting removal or force remove")
            process = container.process if container.status == "running" else None
        if process is not None:
            kill_group(process)
            process.wait()
        with self._changed:
            container.removed = True
            if container.status == "running":
                container.status, container.exit_code = "exited", 137
            self._containers.pop(container.id, None)
            self._changed.notify_all()

    def list(self, everything: bool, filters: dict[str, list[str]]) -> list[Object]:
        with self._changed:
            found = [c for c in self._containers.values() if everything or c.status == "running"]
            for kind, values in filters.items():
                for value in values:
                    if kind == "label":
                        found = [c for c in found if _has_label(c, value)]
                    elif kind == "status":
                        found = [c for c in found if c.status == value]
                    elif kind == "name":
                        found = [c for c in found if value.lstrip("/") in c.name]
                    elif kind == "id":
                        found = [c for c in found if c.id.startswith(value)]
                    else:
                        raise EngineError(400, f"invalid filter '{kind}'")
            return [c.summary() for c in reversed(found)]  # newest first, as the engine lists


def _has_label(container: Container, selector: str) -> bool:
    if not selector:
        return True
    key, sep, value = selector.partition("=")
    labels = container.labels
    return key in labels and (not sep or labels[key] == value)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine: FakeDocker
    ROUTES: list[tuple[str, re.Pattern[str], str]] = [
        ("GET", re.compile(r"^/_ping$"), "ping"),
        ("HEAD", re.compile(r"^/_ping$"), "ping"),
        ("GET", re.compile(r"^/version$"), "version"),
        ("GET", re.compile(r"^/images/(?P<ref>.+)/json$"), "inspect_image"),
        ("POST", re.compile(r"^/images/create$"), "pull"),
        ("POST", re.compile(r"^/containers/create$"), "create"),
        ("GET", re.compile(r"^/containers/json$"), "list"),
        ("GET", re.compile(r"^/containers/(?P<ref>[^/]+)/json$"), "inspect"),
        ("POST", re.compile(r"^/containers/(?P<ref>[^/]+)/start$"), "start"),
        ("POST", re.compile(r"^/containers/(?P<ref>[^/]+)/wait$"), "wait"),
        ("GET", re.compile(r"^/containers/(?P<ref>[^/]+)/logs$"), "logs"),
        ("POST", re.compile(r"^/containers/(?P<ref>[^/]+)/kill$"), "kill"),
        ("DELETE", re.compile(r"^/containers/(?P<ref>[^/]+)$"), "remove"),
    ]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        path = re.sub(r"^/v\d+\.\d+(?=/)", "", url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            for verb, pattern, action in self.ROUTES:
                found = pattern.match(path)
                if found is not None and verb == method:
                    ref = unquote(found.groupdict().get("ref") or "")
                    return getattr(self, f"_{action}")(ref, query, json.loads(raw) if raw else {})
            raise EngineError(404, f"page not found: {method} {url.path}")
        except EngineError as err:
            self._send(err.code, json.dumps({"message": err.message}).encode())

    # One method per route: (reference in the path, query, JSON body)

    def _ping(self, ref: str, query: dict[str, str], body: Object) -> None:
        self._send(200, b"OK", "text/plain; charset=utf-8")

    def _version(self, ref: str, query: dict[str, str], body: Object) -> None:
        version = {"Version": "26.1.0", "ApiVersion": API_VERSION, "MinAPIVersion": "1.24", "Os": "linux",
                   "Arch": "amd64", "KernelVersion": os.uname().release, "GoVersion": "go1.21.9",
                   "Components": [{"Name": "Engine", "Version": "26.1.0 (fake)"}]}
        self._send(200, json.dumps(version).encode())

    def _inspect_image(self, ref: str, query: dict[str, str], body: Object) -> None:
        self._send(200, json.dumps(self.engine.inspect_image(ref)).encode())

    def _pull(self, ref: str, query: dict[str, str], body: Object) -> None:
        image = self.engine.pull(query.get("fromImage", ""), query.get("tag", ""))
        progress = [{"status": f"Pulling from {image.rsplit(':', 1)[0]}", "id": image.rsplit(":", 1)[-1]},
                    {"status": "Digest: sha256:" + "0" * 64},
                    {"status": f"Status: Downloaded newer image for {image}"}]
        self._stream([json.dumps(line).encode() + b"\r\n" for line in progress])

    def _create(self, ref: str, query: dict[str, str], body: Object) -> None:
        container_id = self.engine.create(query.get("name", ""), body)
        self._send(201, json.dumps({"Id": container_id, "Warnings": []}).encode())

    def _list(self, ref: str, query: dict[str, str], body: Object) -> None:
        filters = json.loads(query.get("filters") or "{}")
        if any(not isinstance(v, list) for v in filters.values()):  # the old map form {"label": {"a=b": true}}
            filters = {k: list(v) if isinstance(v, dict) else v for k, v in filters.items()}
        everything = query.get("all", "0") not in ("0", "false", "False", "")
        self._send(200, json.dumps(self.engine.list(everything, filters)).encode())

    def _inspect(self, ref: str, query: dict[str, str], body: Object) -> None:
        with self.engine._changed:
            found = self.engine._find(ref).inspect()
        self._send(200, json.dumps(found).encode())

    def _start(self, ref: str, query: dict[str, str], body: Object) -> None:
        self._send(204 if self.engine.start_container(ref) else 304, b"")

    def _wait(self, ref: str, query: dict[str, str], body: Object) -> None:
        code = self.engine.wait(ref)
        self._send(200, json.dumps({"StatusCode": code, "Error": None}).encode())

    def _logs(self, ref: str, query: dict[str, str], body: Object) -> None:
        wanted = {k: query.get(k, "0") not in ("0", "false", "False") for k in ("stdout", "stderr")}
        data = self.engine.logs(ref, wanted["stdout"], wanted["stderr"])
        self._send(200, data, "application/vnd.docker.multiplexed-stream")

    def _kill(self, ref: str, query: dict[str, str], body: Object) -> None:
        self.engine.kill(ref)
        self._send(204, b"")

    def _remove(self, ref: str, query: dict[str, str], body: Object) -> None:
        self.engine.remove(ref, query.get("force", "0") not in ("0", "false", "False"))
        self._send(204, b"")

    def _send(self, code: int, data: bytes, content_type: str = "application/json") -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Api-Version", API_VERSION)
            if code not in (204, 304):
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if code not in (204, 304) and self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a wait that timed out)
            self.close_connection = True

    def _stream(self, chunks: list[bytes]) -> None:
        """A chunked JSON progress stream, as the engine sends for pulls."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
