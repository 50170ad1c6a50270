"""The Docker executor on the real Docker engine (tests/support/docker_engine.py:
`make test` starts one when none answers), its pods in the pachyderm/job-shim
image built from this repository.

pachd listens on 0.0.0.0 here (see docker_engine.docker_pachd for why).

The fake engine (tests/support/fake_docker.py) is kept for what the real one
cannot be made to show here: a registry that answers and refuses a pull
("pull access denied"; the only registry on this machine is the loopback one
of the --push-images test, without authentication to refuse with), and
privileged containers (--pod-pfs fuse), which this machine's engine refuses
to start ("unable to apply caps: operation not permitted").
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from pachyderm_client import Client
from pachd.errors import Unavailable
from pachd.executor.base import JobSpec, PodEvent, PodPhase
from pachd.executor.docker import ATTEMPT_LABEL, CLUSTER_LABEL, INDEX_LABEL, JOB_LABEL, PIPELINE_LABEL, DockerExecutor
from pachyderm_client.proto import pps_pb2
from tests.pps.test_tutorial import sums
from tests.support.cli import pachctl
from tests.support.examples import fruit_stand_first_commit
from tests.support.docker_engine import BUSYBOX, SHIM_IMAGE, build, docker_pachd, require_engine
from tests.support.fake_docker import FakeDocker
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, only_job, pipeline
from tests.support.ports import free_port
from tests.support.wait import wait_until

# The first run on a machine builds the images (minutes); later runs reuse the engine's cache.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture
def shim_pachd(tmp_path: Path, engine: docker.DockerClient) -> Iterator[PachdProcess]:
    server = docker_pachd(tmp_path)
    yield server
    try:
        with Client(server.address) as client:
            client.delete_all()  # removes the containers of every job
    finally:
        server.stop()


def containers(engine: docker.DockerClient, job_id: str, **labels: str) -> list[Container]:
    wanted = [f"{JOB_LABEL}={job_id}", *(f"{key}={value}" for key, value in labels.items())]
    found: list[Container] = engine.containers.list(all=True, filters={"label": wanted}, ignore_removed=True)
    return sorted(found, key=lambda c: c.name)


def pod(container: Container) -> str:
    """`<job>-<index>-<attempt>`: a container's name without its cluster's prefix."""
    return container.name.removeprefix(f"pach-{container.labels[CLUSTER_LABEL]}-")


def exit_codes(engine: docker.DockerClient, job_id: str) -> dict[str, int]:
    return {pod(c): int(c.attrs["State"]["ExitCode"]) for c in containers(engine, job_id)}


def job_on_one_file(client: Client, request: pps_pb2.CreatePipelineRequest) -> tuple[pps_pb2.JobInfo, bytes]:
    """Creates repo "data" and the pipeline, commits one file: the job once ended, and its logs."""
    client.create_repo("data")
    client.create_pipeline(request)
    with client.commit("data") as commit:
        client.put_file(("data", commit.id), "f", b"x\n")
    info = only_job(client, request.pipeline.name)
    return info, b"".join(client.get_logs(info.job.id))


def logging_container(engine: docker.DockerClient, job_id: str, marker: bytes) -> Container:
    """The job's container once its logs show `marker`."""
    def seen() -> Container | None:
        return next((c for c in containers(engine, job_id) if marker in c.logs()), None)
    wait_until(lambda: seen() is not None, what=f"a container logging {marker!r}", timeout=120)
    found = seen()
    assert found is not None
    return found


def the_job(client: Client, name: str) -> str:
    wait_until(lambda: len(client.list_job(name)) == 1, what=f"the job of {name}")
    return str(client.list_job(name)[0].job.id)


def test_fruit_stand_runs_in_job_shim_containers(shim_pachd: PachdProcess, engine: docker.DockerClient) -> None:
    address = shim_pachd.address
    sum_commit = fruit_stand_first_commit(address)
    with Client(address) as client:
        assert sums(client, sum_commit) == {"apple": 133, "orange": 205, "banana": 165}
        jobs = {info.pipeline.name: info.job.id for info in client.list_job()}
    logs = pachctl(address, "get-logs", jobs["sum"])
    assert logs.code == 0, logs.err

    (container,) = containers(engine, jobs["filter"])
    assert container.name == f"pach-{container.labels[CLUSTER_LABEL]}-{jobs['filter']}-0-0"
    config, host = container.attrs["Config"], container.attrs["HostConfig"]
    assert config["Image"] == "pachyderm/job-shim" and config["Cmd"] == ["job-shim", jobs["filter"]]
    assert container.labels[PIPELINE_LABEL] == "filter" and container.labels["pipeline"] == "filter"
    assert container.labels[INDEX_LABEL] == "0" and container.labels[ATTEMPT_LABEL] == "0"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PACHD_PORT_650_TCP_ADDR"] == "host.docker.internal"
    assert env["PACHD_PORT_650_TCP_PORT"] == str(shim_pachd.port)
    assert env["PACH_POD_INDEX"] == "0" and env["PACH_POD_NAME"] == container.name
    assert host["ExtraHosts"] == ["host.docker.internal:host-gateway"] and not host["Privileged"]
    assert set(exit_codes(engine, jobs["sum"]).values()) == {0}


def test_a_killed_container_is_replaced(shim_pachd: PachdProcess, engine: docker.DockerClient) -> None:
    script = """
        case "$PACH_POD_NAME" in *-0-0) echo first; sleep 300;; esac
        echo second
        cp /pfs/data/f /pfs/out/f
    """
    with Client(shim_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("copy", script, [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"fruit\n")
        job_id = the_job(client, "copy")
        logging_container(engine, job_id, b"first").kill()  # SIGKILL, as the OOM killer would
        info = only_job(client, "copy", timeout=120)
        assert info.state == pps_pb2.JOB_SUCCESS
        assert client.get_file_bytes(("copy", info.output_commit.id), "f") == b"fruit\n"
        assert len(client.list_file(("copy", info.output_commit.id), "")) == 1
        logs = b"".join(client.get_logs(job_id))
        assert logs.index(b"0 | first") < logs.index(b"0 | second")  # both attempts, in order
    assert exit_codes(engine, job_id) == {f"{job_id}-0-0": 137, f"{job_id}-0-1": 0}


@pytest.fixture(scope="module")
def crashing_image(engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An image whose job-shim exits 3 at once."""
    context = tmp_path_factory.mktemp("crashing")
    (context / "Dockerfile").write_text(
        f"FROM {BUSYBOX}\nRUN printf '#!/bin/sh\\necho crashes\\nexit 3\\n' > /bin/job-shim && chmod +x /bin/job-shim\n")
    build("pach-test/crashing:1", context)
    return "pach-test/crashing:1"


def test_a_container_crashing_past_its_restarts_fails_the_job(shim_pachd: PachdProcess, crashing_image: str,
                                                              engine: docker.DockerClient) -> None:
    request = pipeline("broken", "true", [("data", MAP)])
    request.transform.image = crashing_image
    with Client(shim_pachd.address) as client:
        info, logs = job_on_one_file(client, request)
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs.count(b"0 | crashes") == 4  # the first and 3 replacements
    assert logs.endswith(b"pachd | job failed: pod 0: exit code 3\n")
    assert exit_codes(engine, info.job.id) == {f"{info.job.id}-0-{attempt}": 3 for attempt in range(4)}


def test_get_logs_reads_the_engine(shim_pachd: PachdProcess, engine: docker.DockerClient) -> None:
    script = 'echo "out of $PACH_POD_NAME"; echo "err of $PACH_POD_NAME" >&2'
    with Client(shim_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("talk", script, [("data", MAP)], parallelism=2))
        with client.commit("data") as commit:
            client.put_files(("data", commit.id), [(f"f{k}", b"x\n") for k in range(20)])
        info = only_job(client, "talk", timeout=120)
        assert info.state == pps_pb2.JOB_SUCCESS
        lines = b"".join(client.get_logs(info.job.id)).splitlines()
    job = info.job.id
    for index in (0, 1):
        name = next(c.name for c in containers(engine, job) if pod(c) == f"{job}-{index}-0")
        assert f"{index} | out of {name}".encode() in lines
        assert f"{index} | err of {name}".encode() in lines  # stderr too, demultiplexed
    prefixes = [line.split(b" | ", 1)[0] for line in lines]
    assert prefixes == sorted(prefixes) and set(prefixes) == {b"0", b"1"}  # index 0's lines, then index 1's


def test_deleting_a_pipeline_removes_its_containers(shim_pachd: PachdProcess, engine: docker.DockerClient) -> None:
    with Client(shim_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("one", "sleep 300", [("data", MAP)]))
        client.create_pipeline(pipeline("two", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"x\n")
        assert only_job(client, "two", timeout=120).state == pps_pb2.JOB_SUCCESS
        one, two = the_job(client, "one"), the_job(client, "two")
        wait_until(lambda: [c for c in containers(engine, one) if c.status == "running"], what="one's container",
                   timeout=120)
        client.delete_pipeline("one")
        wait_until(lambda: containers(engine, one) == [], what="one's containers to go", timeout=120)
        assert containers(engine, two)  # its ended job's container stays, for get-logs
        client.delete_all()
        assert containers(engine, two) == []


def test_two_pachds_on_one_engine_keep_their_containers_apart(shim_pachd: PachdProcess, tmp_path: Path,
                                                               engine: docker.DockerClient) -> None:
    """Two pachds making the same commits have the same job IDs: each still runs,
    logs and removes only its own containers, and neither adopts the other's."""
    script = 'echo "pachd $(cat /pfs/data/who)"; sleep 300'
    (tmp_path / "other").mkdir()
    other = docker_pachd(tmp_path / "other")
    try:
        jobs = []
        for server in (shim_pachd, other):
            with Client(server.address) as client:
                client.create_repo("data")
                client.create_pipeline(pipeline("same", script, [("data", MAP)]))
                with client.commit("data") as commit:
                    client.put_file(("data", commit.id), "who", f"{server.port}\n".encode())
                jobs.append(the_job(client, "same"))
        assert jobs[0] == jobs[1]
        job = jobs[0]
        wait_until(lambda: sum(c.status == "running" for c in containers(engine, job)) == 2,
                   what="both pachds' containers running", timeout=120)
        assert len({c.labels[CLUSTER_LABEL] for c in containers(engine, job)}) == 2
        with Client(other.address) as client:
            wait_until(lambda: b"".join(client.get_logs(job)), what="other's logs")
            assert b"".join(client.get_logs(job)).splitlines() == [f"0 | pachd {other.port}".encode()]
        other.kill()
        other.start()  # recovers its own containers only
        with Client(other.address) as client:
            client.delete_all()
        wait_until(lambda: len(containers(engine, job)) == 1, what="other's container to go", timeout=120)
        with Client(shim_pachd.address) as client:
            assert b"".join(client.get_logs(job)).splitlines() == [f"0 | pachd {shim_pachd.port}".encode()]
    finally:
        other.stop()


def test_pull_policy_never_with_a_missing_image_fails_the_job(tmp_path: Path, engine: docker.DockerClient) -> None:
    server = docker_pachd(tmp_path, "--image-pull-policy", "Never")
    try:
        request = pipeline("nowhere", "true", [("data", MAP)])
        request.transform.image = "pach-test/not-here:1"
        with Client(server.address) as client:
            info, logs = job_on_one_file(client, request)
            client.delete_all()
    finally:
        server.stop()
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs == b'pachd | job failed: pod 0: image "pach-test/not-here:1" is not present and the pull policy is Never\n'
    assert containers(engine, info.job.id) == []


def test_an_image_that_cannot_be_pulled_stays_pulling_until_it_can(shim_pachd: PachdProcess,
                                                                   engine: docker.DockerClient) -> None:
    """As on Kubernetes: the job waits in PULLING (saying why in get-logs) while pachd pulls again;
    once the image is there (tagged here, as a push would bring it), the pod runs."""
    repository = f"127.0.0.1:{free_port()}/nobody/absent"  # a registry address where none listens
    request = pipeline("unpullable", "cp /pfs/data/f /pfs/out/f", [("data", MAP)])
    request.transform.image = f"{repository}:1"
    with Client(shim_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(request)
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"x\n")
        wait_until(lambda: len(client.list_job("unpullable")) == 1, what="the job")
        job_id = client.list_job("unpullable")[0].job.id
        waiting = f'pachd | job waits for its image: pod 0: cannot pull image "{request.transform.image}"'.encode()
        wait_until(lambda: waiting in b"".join(client.get_logs(job_id)), what="the job to say it waits")
        assert client.inspect_job(job_id).state == pps_pb2.JOB_PULLING
        assert containers(engine, job_id) == []
        engine.images.get(SHIM_IMAGE).tag(repository, "1")
        try:
            info = client.inspect_job(job_id, block_state=True, timeout=300)
            assert info.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes(("unpullable", info.output_commit.id), "f") == b"x\n"
        finally:
            engine.images.remove(f"{repository}:1")


def test_secrets_need_kubernetes(shim_pachd: PachdProcess, engine: docker.DockerClient) -> None:
    request = pipeline("secretive", "true", [("data", MAP)])
    request.transform.secrets.add(name="creds", mount_path="/etc/creds")
    with Client(shim_pachd.address) as client:
        info, logs = job_on_one_file(client, request)
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs == b"pachd | job failed: pod 0: secrets need the kubernetes executor\n"
    assert containers(engine, info.job.id) == []


def test_containers_outlive_a_pachd_crash(tmp_path: Path, engine: docker.DockerClient) -> None:
    """kill -9 of pachd mid-job: the container runs on, the restarted pachd adopts it."""
    server = docker_pachd(tmp_path)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            script = "echo started; while [ ! -e /tmp/go ]; do sleep 0.1; done; cp /pfs/data/f /pfs/out/f"
            client.create_pipeline(pipeline("slow", script, [("data", MAP)]))
            with client.commit("data") as commit:
                client.put_file(("data", commit.id), "f", b"kept\n")
            job_id = the_job(client, "slow")
            container = logging_container(engine, job_id, b"started")
        server.kill()
        server.start()
        assert container.exec_run(["touch", "/tmp/go"]).exit_code == 0
        with Client(server.address) as client:
            info = only_job(client, "slow", timeout=120)
            assert info.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes(("slow", info.output_commit.id), "f") == b"kept\n"
            assert exit_codes(engine, job_id) == {f"{job_id}-0-0": 0}  # adopted, not replaced
            client.delete_all()
    finally:
        server.stop()


# The executor alone

def spec_of(job_id: str, image: str, *command: str, pods: int = 1) -> JobSpec:
    return JobSpec(job_id=job_id, pipeline="p", pod_count=pods, indices=tuple(range(pods)), image=image,
                   command=command, env={"GREETING": "hello"}, max_restarts=1)


async def outcome(executor: DockerExecutor, job_id: str, pods: int) -> list[PodEvent]:
    """The job's events until every pod succeeded or gave up."""
    seen: list[PodEvent] = []
    async with asyncio.timeout(120):
        async for event in executor.events(job_id):
            seen.append(event)
            if sum(e.phase in (PodPhase.SUCCEEDED, PodPhase.GAVE_UP) for e in seen) == pods:
                return seen
    return seen


async def test_the_executor_alone(engine: docker.DockerClient) -> None:
    executor = DockerExecutor(docker_host=require_engine(), cluster="test", pachd_address="pachd.example:650", base_env={"A": "1"},
                              image_pull_policy="IfNotPresent")
    await executor.recover()
    spec = spec_of(os.urandom(16).hex(), BUSYBOX, "sh", "-c", 'echo "$GREETING from $PACH_POD_INDEX"; exit 1', pods=2)
    try:
        await executor.start(spec)
        await executor.start(spec)  # idempotent
        events = await outcome(executor, spec.job_id, 2)
        for index in (0, 1):  # the first container and one replacement (max_restarts=1), in order
            assert [(e.name[-4:], e.phase) for e in events if e.index == index] == [
                (f"-{index}-0", PodPhase.STARTED), (f"-{index}-0", PodPhase.CRASHED),
                (f"-{index}-1", PodPhase.STARTED), (f"-{index}-1", PodPhase.GAVE_UP)]
        assert {e.reason for e in events if e.phase is PodPhase.GAVE_UP} == {"exit code 1"}
        lines = [(line.index, line.attempt, line.line) async for line in executor.logs(spec.job_id)]
        assert lines == [(0, 0, b"hello from 0"), (0, 1, b"hello from 0"),
                         (1, 0, b"hello from 1"), (1, 1, b"hello from 1")]
        first: Any = containers(engine, spec.job_id)[0].attrs
        assert first["HostConfig"]["Privileged"] is False and not first["HostConfig"]["ExtraHosts"]
        assert "PACHD_PORT_650_TCP_ADDR=pachd.example" in first["Config"]["Env"] and "A=1" in first["Config"]["Env"]
        assert await executor.node_count() == 1
    finally:
        await executor.delete(spec.job_id)
        await executor.delete(spec.job_id)  # nothing left: no error
        await executor.close()
    assert containers(engine, spec.job_id) == []


async def test_an_unreachable_engine_is_unavailable() -> None:
    executor = DockerExecutor(docker_host=f"tcp://127.0.0.1:{free_port()}", cluster="test", pachd_address="pachd:650",
                              base_env={}, image_pull_policy="IfNotPresent")
    await executor.recover()  # logs the problem; tried again by start()
    with pytest.raises(Unavailable):
        await executor.start(spec_of("e" * 32, "busybox", "true"))
    with pytest.raises(Unavailable):
        await executor.delete("e" * 32)
    await executor.close()


# On the fake engine (see the module's docstring)

async def test_fuse_pods_run_privileged(tmp_path: Path) -> None:
    fake = FakeDocker(tmp_path / "engine", images={BUSYBOX}).start()
    executor = DockerExecutor(docker_host=fake.url, cluster="test", pachd_address="pachd:650", base_env={},
                              image_pull_policy="IfNotPresent", privileged=True)
    spec = spec_of("d" * 32, BUSYBOX, "true")
    try:
        await executor.recover()
        await executor.start(spec)
        assert [e.phase for e in await outcome(executor, spec.job_id, 1)] == [PodPhase.STARTED, PodPhase.SUCCEEDED]
        assert fake.created[0]["body"]["HostConfig"]["Privileged"] is True
        await executor.delete(spec.job_id)
    finally:
        await executor.close()
        fake.stop()


def test_a_refused_pull_keeps_the_job_pulling(tmp_path: Path) -> None:
    fake = FakeDocker(tmp_path / "engine").start()
    fake.unpullable.add("example/private:1")
    server = PachdProcess(tmp_path / "data")
    server.extra_args = ["--executor", "docker", "--docker-host", fake.url, "--pod-pachd-address", server.address]
    server.start()
    try:
        request = pipeline("denied", "true", [("data", MAP)])
        request.transform.image = "example/private:1"
        with Client(server.address) as client:
            client.create_repo("data")
            client.create_pipeline(request)
            with client.commit("data") as commit:
                client.put_file(("data", commit.id), "f", b"x\n")
            wait_until(lambda: len(client.list_job("denied")) == 1, what="the job")
            job_id = client.list_job("denied")[0].job.id
            waiting = b'pachd | job waits for its image: pod 0: cannot pull image "example/private:1": pull access denied'
            wait_until(lambda: b"".join(client.get_logs(job_id)).startswith(waiting), what="the job to say it waits")
            wait_until(lambda: len(fake.pull_attempts) >= 2, what="a second pull")  # pachd keeps trying
            assert client.inspect_job(job_id).state == pps_pb2.JOB_PULLING
            client.delete_pipeline("denied")
    finally:
        server.stop()
        fake.stop()
    assert fake.created == []
