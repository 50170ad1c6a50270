"""--push-images (create-pipeline, update-pipeline, create-job) against a real
registry (Debian's docker-registry on loopback, tests/support/registry.py) and
the real Docker engine: the manifest's local image is tagged
<registry>/<user>/<name>:<unique tag> and pushed, the request names the pushed
image, and containers pull it (pull policy Always) to run the pipeline."""

from __future__ import annotations

import getpass
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.errors import ImageNotFound

from pachyderm_client import Client
from pachctl.push import DEFAULT_REGISTRY, push_image, pushed_name
from pachyderm_client.proto import pps_pb2
from tests.support.cli import pachctl
from tests.support.docker_engine import SHIM_IMAGE, build, docker_pachd
from tests.support.pipelines import only_job
from tests.support.registry import Registry

pytestmark = pytest.mark.timeout(1800)  # the images' first build on a machine takes minutes
IMAGE = "pach-test/greeter:1"
PUSHED = re.compile(r"^Pushing (\S+), this may take a while\.$", re.MULTILINE)


@pytest.fixture(scope="module")
def greeter(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A pipeline image of the user's, only on this engine: job-shim plus a greeting."""
    context = tmp_path_factory.mktemp("greeter")
    (context / "greeting").write_text("hello from the pushed image\n")
    (context / "Dockerfile").write_text(f"FROM {SHIM_IMAGE}\nCOPY greeting /greeting\n")
    build(IMAGE, context)
    return IMAGE


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    started = Registry(tmp_path / "registry").start()
    yield started
    started.stop()


def manifest(tmp_path: Path, name: str, script: str) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({
        "pipeline": {"name": name},
        "transform": {"image": IMAGE, "cmd": ["sh"], "stdin": [script]},
        "parallelism_spec": {"constant": 1},
        "inputs": [{"repo": {"name": "data"}}],
    }))
    return path


def untag(engine: docker.DockerClient, name: str) -> None:
    """Drops the engine's own tag of the pushed name: running it takes a pull."""
    engine.images.remove(name)
    with pytest.raises(ImageNotFound):
        engine.images.get(name)


def test_pipelines_run_the_pushed_image(engine: docker.DockerClient, greeter: str, registry: Registry,
                                        tmp_path: Path) -> None:
    server = docker_pachd(tmp_path, "--image-pull-policy", "Always")
    flags = ("-p", "-r", registry.address, "-u", "tester")
    try:
        address = server.address
        assert pachctl(address, "create-repo", "data").code == 0
        created = pachctl(address, "create-pipeline", *flags, "-f", str(manifest(tmp_path, "greet", "cp /greeting /pfs/out/")))
        assert created.code == 0, created.err
        (first,) = PUSHED.findall(created.out)
        assert re.fullmatch(rf"{re.escape(registry.address)}/tester/greeter:[0-9a-f]{{32}}", first)
        assert created.err == ""  # no progress display: stderr is not a terminal
        untag(engine, first)
        with Client(address) as client:
            assert client.inspect_pipeline("greet").transform.image == first  # the request named the pushed image
            with client.commit("data") as commit:
                client.put_file(("data", commit.id), "f", b"x\n")
            info = only_job(client, "greet", timeout=180)
            assert info.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes(("greet", info.output_commit.id), "greeting") == b"hello from the pushed image\n"
        engine.images.get(first)  # pulled back from the registry to run
        assert f"/v2/tester/greeter/manifests/{first.rsplit(':', 1)[1]}" in registry.log()

        updated = pachctl(address, "update-pipeline", *flags, "-f",
                          str(manifest(tmp_path, "greet", "cat /greeting /greeting > /pfs/out/twice")))
        assert updated.code == 0, updated.err
        (second,) = PUSHED.findall(updated.out)
        assert second != first and second.rsplit(":", 1)[0] == first.rsplit(":", 1)[0]  # a new unique tag
        with Client(address) as client:
            assert client.inspect_pipeline("greet").transform.image == second

        job_spec = tmp_path / "job.json"
        job_spec.write_text(json.dumps({"transform": {"image": IMAGE, "cmd": ["sh"], "stdin": ["true"]}}))
        job = pachctl(address, "create-job", *flags, "-f", str(job_spec))
        assert job.code == 0, job.err
        (third,) = PUSHED.findall(job.out)
        job_id = job.out.strip().splitlines()[-1]
        with Client(address) as client:
            assert client.inspect_job(job_id).transform.image == third
            client.delete_all()
    finally:
        server.stop()


def test_push_shows_progress_and_fails_cleanly(engine: docker.DockerClient, greeter: str, registry: Registry) -> None:
    shown = io.StringIO()
    pushed = push_image(IMAGE, registry.address, "tester", progress=shown)
    assert pushed.startswith(f"{registry.address}/tester/greeter:")
    lines = shown.getvalue().splitlines()
    assert any("Pushed" in line or "Layer already exists" in line for line in lines), lines
    assert lines[-1].startswith(pushed.rsplit(":", 1)[1])  # the engine's last word: the tag and digest
    missing = pachctl("127.0.0.1:1", "create-job", "-p", "-r", registry.address, "-f", "-",
                      stdin=json.dumps({"transform": {"image": "pach-test/never-built:1"}}))
    assert missing.code == 1 and missing.err.startswith("pachctl: ")
    nowhere = pachctl("127.0.0.1:1", "create-job", "-p", "-r", "127.0.0.1:1", "-f", "-",
                      stdin=json.dumps({"transform": {"image": IMAGE}}))
    assert nowhere.code == 1 and nowhere.err.startswith("pachctl: ")


def test_defaults_are_the_cluster_registry_and_the_os_user() -> None:
    assert DEFAULT_REGISTRY == "localhost:30500"
    assert pushed_name("example.com:5000/team/tool:7", "", "", "t1") == f"localhost:30500/{getpass.getuser()}/tool:t1"
    for command in ("create-pipeline", "update-pipeline", "create-job"):
        usage = pachctl("127.0.0.1:1", command, "--help").out
        assert "-p, --push-images" in usage and "-r REGISTRY, --registry REGISTRY" in usage
        assert "-u USERNAME, --username USERNAME" in usage
