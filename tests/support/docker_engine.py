"""The real Docker engine the tests use, and the images they build on it.

`make test` runs under etc/with-dockerd.sh, which finds or starts an engine,
names it in DOCKER_HOST and sets PACH_TEST_DOCKER=required: then a test that
needs the engine fails when it cannot be had. Run without it (plain pytest
on a machine without an engine), such tests skip and say why.

The base images are made locally (etc/local-base-images.sh: busybox-static
and a debootstrap Debian, no registry needed), and pachyderm/pachd and
pachyderm/job-shim are built from the Debian one by the same script as
`make images`, once per session. The engine keeps all of them, and the build
cache, in its data root for the next run.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
from pathlib import Path

import docker
import pytest
from docker.errors import DockerException
from requests.exceptions import RequestException

from tests.support.pachd import PachdProcess

ROOT = Path(__file__).resolve().parent.parent.parent
BUSYBOX = "pach-local/busybox:1.35"
DEBIAN = "pach-local/debian:bookworm"
SHIM_IMAGE = "pachyderm/job-shim:latest"
PACHD_IMAGE = "pachyderm/pachd:latest"
BUILD_TIMEOUT = 1800.0  # a first build on a cold cache downloads Debian and PyPI packages


def engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


@functools.cache
def _unavailable() -> str:
    """Why the engine cannot be used, or "" when it answers."""
    try:
        client = docker.DockerClient(base_url=engine_host(), version="auto", timeout=20)
    except (DockerException, RequestException) as err:
        return f"no Docker engine at {engine_host()}: {err}"
    try:
        client.ping()
    except (DockerException, RequestException) as err:
        return f"the Docker engine at {engine_host()} does not answer: {err}"
    finally:
        client.close()
    return ""


def require_engine() -> str:
    """The engine's URL; skips the test without one, or fails it under `make test`."""
    problem = _unavailable()
    if problem:
        if os.environ.get("PACH_TEST_DOCKER") == "required":
            pytest.fail(problem)
        pytest.skip(f"{problem} (make test starts one)")
    return engine_host()


def _run(what: str, *argv: str, env: dict[str, str] | None = None) -> None:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                          env={**os.environ, "DOCKER_HOST": engine_host(), **(env or {})})
    assert done.returncode == 0, f"{what} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"


@functools.cache
def local_bases() -> None:
    """pach-local/busybox and pach-local/debian on the engine."""
    _run("making the local base images", "bash", "etc/local-base-images.sh")


class _Build:
    """The images' build, once per session: started early (in the background, while
    other tests run) or by the first test that needs them; every caller waits for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._build, name="image-build", daemon=True)
                self._thread.start()

    def _build(self) -> None:
        try:
            local_bases()
            _run("make images", "bash", "etc/build-images.sh", env={"IMAGE_BASE": DEBIAN})
        except BaseException as err:  # noqa: BLE001 - handed to every test that waits
            self._failure = err

    def wait(self) -> None:
        self.start()
        assert self._thread is not None
        self._thread.join(BUILD_TIMEOUT)
        if self._failure is not None:
            raise self._failure
        assert not self._thread.is_alive(), "make images did not finish"


_BUILD = _Build()
USES_IMAGES = "engine"  # the fixture of the tests that need the images


def build_in_background() -> None:
    """Starts the images' build now, if the engine answers."""
    if not _unavailable():
        _BUILD.start()


def project_images() -> None:
    """pachyderm/pachd and pachyderm/job-shim (tagged latest), built from the local Debian base."""
    _BUILD.wait()


def build(tag: str, context: Path, *args: str) -> None:
    """`docker build` of `context` (its Dockerfile) as `tag`, as make images builds."""
    _run(f"building {tag}", "bash", "etc/docker-build.sh", *args, "-t", tag, str(context))



def docker_pachd(tmp_path: Path, *flags: str) -> PachdProcess:
    """pachd with the Docker executor on the real engine. It listens on 0.0.0.0:
    containers dial it at host.docker.internal, which the engine maps to the
    host's address on its bridge (host-gateway), while tests dial 127.0.0.1,
    and one listener on every address serves both."""
    server = PachdProcess(tmp_path / "data")
    server.extra_args = ["--executor", "docker", "--docker-host", require_engine(), "--host", "0.0.0.0", *flags]
    return server.start()
