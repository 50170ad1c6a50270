"""pytest fixtures for a running pachd and a client (a plugin loaded by tests/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from pachyderm_client import Client
from tests.support import docker_engine
from tests.support.azurite import Azurite
from tests.support.etcd import EtcdServer
from tests.support.gcs import GcsEmulator
from tests.support.pachd import PachdProcess
from tests.support.s3 import S3Server


def pytest_collection_finish(session: pytest.Session) -> None:
    """The Docker images take minutes to build: when tests will need them, the build
    starts now and runs while the tests before them do."""
    if any(docker_engine.USES_IMAGES in getattr(item, "fixturenames", ()) for item in session.items):
        docker_engine.build_in_background()


@pytest.fixture(scope="session")
def engine() -> Iterator[docker.DockerClient]:
    """The real Docker engine, with the local base images and pachyderm/pachd and
    pachyderm/job-shim built on it (tests/support/docker_engine.py)."""
    host = docker_engine.require_engine()
    docker_engine.project_images()
    client = docker.DockerClient(base_url=host, version="auto")
    yield client
    client.close()


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd for the session."""
    server = EtcdServer(tmp_path_factory.mktemp("etcd") / "data").start()
    yield server
    server.stop()


def _start(kind: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> PachdProcess:
    data_dir = tmp_path_factory.mktemp(f"pachd-{kind}") / "data"
    etcd = ""
    if kind == "etcd":
        etcd = request.getfixturevalue("etcd_server").address
    # Tests serve put-file URLs from their own loopback servers, which pachd refuses by default.
    return PachdProcess(data_dir, etcd=etcd, extra_args=["--url-allow", "127.0.0.1"]).start()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcsEmulator]:
    """One real GCS emulator for the session (a fresh bucket per test keeps tests apart)."""
    emulator = GcsEmulator(tmp_path_factory.mktemp("gcs") / "data").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real S3 API server (moto) for the session (a fresh bucket per test keeps tests apart)."""
    server = S3Server(tmp_path_factory.mktemp("s3")).launch()
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session (a fresh container per test keeps tests apart)."""
    emulator = Azurite(tmp_path_factory.mktemp("azurite") / "data").start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session", params=["sqlite", "etcd"])
def pachd(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PachdProcess]:
    """One pachd per metadata backend for the whole session; tests share it."""
    server = _start(str(request.param), tmp_path_factory, request)
    yield server
    server.stop()


@pytest.fixture
def client(pachd: PachdProcess) -> Iterator[Client]:
    """A client of the shared pachd, which starts each test empty."""
    with Client(pachd.address) as connected:
        connected.delete_all()
        yield connected


@pytest.fixture(scope="module")
def module_pachd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PachdProcess]:
    """A pachd of this test module alone, on SQLite: its tests share the data they put."""
    server = PachdProcess(tmp_path_factory.mktemp("module") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def own_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    """A pachd of this test alone (to kill, restart or fill as it likes), on SQLite."""
    server = PachdProcess(tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "etcd"])
def own_pachd_any(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PachdProcess]:
    """Like own_pachd, once per metadata backend (etcd: an etcd of this test alone)."""
    with pachd_on(str(request.param), tmp_path) as server:
        yield server


@contextlib.contextmanager
def pachd_on(backend: str, root: Path) -> Iterator[PachdProcess]:
    """A pachd with its data under `root`, on SQLite or on an etcd of its own ("sqlite", "etcd")."""
    etcd = EtcdServer(root / "etcd").start() if backend == "etcd" else None
    server = PachdProcess(root / "data", etcd=etcd.address if etcd else "").start()
    try:
        yield server
    finally:
        server.stop()
        if etcd is not None:
            etcd.stop()
