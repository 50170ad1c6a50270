"""The Docker executor, through the real `docker` client, against a fake engine
that speaks the Engine HTTP API and runs containers as local processes
(tests/support/fake_docker.py); and once against a real engine, when one runs here."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachctl.client import Client
from pachd.errors import Unavailable
from pachd.executor.base import JobSpec, PodEvent, PodPhase
from pachd.executor.docker import ATTEMPT_LABEL, INDEX_LABEL, JOB_LABEL, PIPELINE_LABEL, DockerExecutor
from protos import pps_pb2
from tests.pps.test_tutorial import EXAMPLE, sums
from tests.support.cli import pachctl
from tests.support.fake_docker import FakeDocker
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, only_job, pipeline
from tests.support.ports import free_port
from tests.support.wait import wait_until

SHIM_IMAGE = "pachyderm/job-shim:latest"


def start_pachd(tmp_path: Path, engine: FakeDocker, *flags: str, own_address: bool = True) -> PachdProcess:
    """pachd on the fake engine; pods dial its loopback address unless `own_address` is off
    (then they use host.docker.internal, which the engine maps to the host)."""
    server = PachdProcess(tmp_path / "data")
    server.extra_args = ["--executor", "docker", "--docker-host", engine.url, *flags]
    if own_address:
        server.extra_args += ["--pod-pachd-address", server.address]
    else:  # containers dial host.docker.internal: pachd must listen beyond loopback
        server.extra_args += ["--host", "0.0.0.0"]
    return server.start()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeDocker]:
    fake = FakeDocker(tmp_path / "engine").start()
    yield fake
    fake.stop()


@pytest.fixture
def docker_pachd(tmp_path: Path, engine: FakeDocker) -> Iterator[PachdProcess]:
    engine.images.add(SHIM_IMAGE)
    server = start_pachd(tmp_path, engine)
    yield server
    server.stop()


def job_on_one_file(client: Client, request: pps_pb2.CreatePipelineRequest) -> tuple[pps_pb2.JobInfo, bytes]:
    """Creates repo "data" and the pipeline, commits one file: the job once ended, and its logs."""
    client.create_repo("data")
    client.create_pipeline(request)
    with client.commit("data") as commit:
        client.put_file("data", commit.id, "f", b"x\n")
    info = only_job(client, request.pipeline.name)
    return info, b"".join(client.get_logs(info.job.id))


def running(engine: FakeDocker, job_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in engine.containers(f"{JOB_LABEL}={job_id}") if c["State"]["Running"]]


def env_of(container: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return dict(item.split("=", 1) for item in container["Config"]["Env"])


def test_fruit_stand_runs_in_containers(tmp_path: Path, engine: FakeDocker) -> None:
    server = start_pachd(tmp_path, engine, own_address=False)
    try:
        address = server.address
        assert pachctl(address, "create-repo", "data").code == 0
        assert pachctl(address, "put-file", "data", "master", "sales", "-c", "-f", str(EXAMPLE / "set1.txt")).code == 0
        created = pachctl(address, "create-pipeline", "-f", str(EXAMPLE / "pipeline.json"))
        assert created.code == 0, created.err
        flushed = pachctl(address, "flush-commit", "data/master/0")
        assert flushed.code == 0, flushed.err
        sum_commit = next(line.split()[1] for line in flushed.out.splitlines() if line.split()[1].startswith("sum/"))
        with Client(address) as client:
            assert sums(client, sum_commit.split("/", 1)[1]) == {"apple": 133, "orange": 205, "banana": 165}
            jobs = {info.pipeline.name: info.job.id for info in client.list_job()}
        logs = pachctl(address, "get-logs", jobs["sum"])
        assert logs.code == 0, logs.err
    finally:
        server.stop()

    assert engine.pulls == [SHIM_IMAGE]  # IfNotPresent: pulled for the first job, present for the second
    assert [c["name"] for c in engine.created] == [f"pach-{jobs['filter']}-0-0", f"pach-{jobs['sum']}-0-0"]
    body = engine.created[0]["body"]
    assert body["Image"] == "pachyderm/job-shim" and body["Cmd"] == ["job-shim", jobs["filter"]]
    assert body["Labels"][JOB_LABEL] == jobs["filter"] and body["Labels"][PIPELINE_LABEL] == "filter"
    assert body["Labels"][INDEX_LABEL] == "0" and body["Labels"][ATTEMPT_LABEL] == "0"
    assert body["Labels"]["pipeline"] == "filter"  # the job's own labels too
    env = dict(item.split("=", 1) for item in body["Env"])
    assert env["PACHD_PORT_650_TCP_ADDR"] == "host.docker.internal"
    assert env["PACHD_PORT_650_TCP_PORT"] == str(server.port)
    assert env["PACH_POD_INDEX"] == "0" and env["PACH_POD_NAME"] == f"pach-{jobs['filter']}-0-0"
    assert env["PACH_PFS_MODE"] == "copy" and env["PACH_DATA_COMMIT_ID"]
    assert body["HostConfig"]["ExtraHosts"] == ["host.docker.internal:host-gateway"]
    assert not body["HostConfig"].get("Privileged")
    assert [c["State"]["ExitCode"] for c in engine.containers(JOB_LABEL)] == [0, 0]


def test_a_killed_container_is_replaced(docker_pachd: PachdProcess, engine: FakeDocker, tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt"
    script = f"""
        if [ ! -e {marker} ]; then touch {marker}; echo first; sleep 60; fi
        echo second
        cp /pfs/data/f /pfs/out/f
    """
    with Client(docker_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("copy", script, [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file("data", commit.id, "f", b"fruit\n")
        wait_until(lambda: len(client.list_job("copy")) == 1, what="the job")
        job_id = client.list_job("copy")[0].job.id
        first = engine.wait_for(lambda: running(engine, job_id) if marker.exists() else None)
        engine.kill_process(first[0]["Name"])  # as the OOM killer would
        info = only_job(client, "copy")
        assert info.state == pps_pb2.JOB_SUCCESS
        assert client.get_file_bytes("copy", info.output_commit.id, "f") == b"fruit\n"
        assert len(client.list_file("copy", info.output_commit.id, "")) == 1
        logs = b"".join(client.get_logs(job_id))
        assert logs.index(b"0 | first") < logs.index(b"0 | second")  # both attempts, in order
    containers = {c["Name"]: c["State"]["ExitCode"] for c in engine.containers(f"{JOB_LABEL}={job_id}")}
    assert containers == {f"/pach-{job_id}-0-0": 137, f"/pach-{job_id}-0-1": 0}


def test_a_container_crashing_past_its_restarts_fails_the_job(docker_pachd: PachdProcess,
                                                              engine: FakeDocker) -> None:
    engine.images.add("example/broken:1")
    engine.crashing["example/broken:1"] = 3
    request = pipeline("broken", "true", [("data", MAP)])
    request.transform.image = "example/broken:1"
    with Client(docker_pachd.address) as client:
        info, logs = job_on_one_file(client, request)
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs.count(b"0 | fake engine: example/broken:1 crashes") == 4  # the first and 3 replacements
    assert logs.endswith(b"pachd | job failed: pod 0: exit code 3\n")
    assert sorted(c["Name"] for c in engine.containers(f"{JOB_LABEL}={info.job.id}")) == [
        f"/pach-{info.job.id}-0-{attempt}" for attempt in range(4)]


def test_get_logs_reads_the_engine(docker_pachd: PachdProcess, engine: FakeDocker) -> None:
    script = 'echo "out of $PACH_POD_NAME"; echo "err of $PACH_POD_NAME" >&2'
    with Client(docker_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("talk", script, [("data", MAP)], parallelism=2))
        with client.commit("data") as commit:
            client.put_files("data", commit.id, [(f"f{k}", b"x\n") for k in range(20)])
        info = only_job(client, "talk")
        assert info.state == pps_pb2.JOB_SUCCESS
        lines = b"".join(client.get_logs(info.job.id)).splitlines()
    job = info.job.id
    for index in (0, 1):
        assert f"{index} | out of pach-{job}-{index}-0".encode() in lines
        assert f"{index} | err of pach-{job}-{index}-0".encode() in lines  # stderr too, demultiplexed
    prefixes = [line.split(b" | ", 1)[0] for line in lines]
    assert prefixes == sorted(prefixes) and set(prefixes) == {b"0", b"1"}  # index 0's lines, then index 1's


def test_deleting_a_pipeline_removes_its_containers(docker_pachd: PachdProcess, engine: FakeDocker) -> None:
    with Client(docker_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("one", "sleep 60", [("data", MAP)]))
        client.create_pipeline(pipeline("two", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file("data", commit.id, "f", b"x\n")
        assert only_job(client, "two").state == pps_pb2.JOB_SUCCESS
        engine.wait_for(lambda: [c for c in engine.containers("pipeline=one") if c["State"]["Running"]])
        client.delete_pipeline("one")
        engine.wait_for(lambda: engine.containers("pipeline=one") == [])
        assert engine.containers("pipeline=two")  # its ended job's container stays, for get-logs
        client.delete_all()
    assert engine.containers() == []


def test_pull_policy_never_with_a_missing_image_fails_the_job(tmp_path: Path, engine: FakeDocker) -> None:
    server = start_pachd(tmp_path, engine, "--image-pull-policy", "Never")
    try:
        request = pipeline("nowhere", "true", [("data", MAP)])
        request.transform.image = "example/not-here:1"
        with Client(server.address) as client:
            info, logs = job_on_one_file(client, request)
    finally:
        server.stop()
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs == b'pachd | job failed: pod 0: image "example/not-here:1" is not present and the pull policy is Never\n'
    assert engine.pulls == [] and engine.created == []


def test_if_not_present_pulls_and_a_failed_pull_fails_the_job(docker_pachd: PachdProcess,
                                                              engine: FakeDocker) -> None:
    engine.unpullable.add("example/private:1")
    with Client(docker_pachd.address) as client:
        client.create_repo("data")
        for name, image in (("pulled", "example/code:2"), ("denied", "example/private:1")):
            request = pipeline(name, "cp /pfs/data/f /pfs/out/f", [("data", MAP)])
            request.transform.image = image
            client.create_pipeline(request)
        with client.commit("data") as commit:
            client.put_file("data", commit.id, "f", b"x\n")
        assert only_job(client, "pulled").state == pps_pb2.JOB_SUCCESS
        denied = only_job(client, "denied")
        logs = b"".join(client.get_logs(denied.job.id))
    assert engine.pulls == ["example/code:2"]
    assert denied.state == pps_pb2.JOB_FAILURE
    assert logs.startswith(b'pachd | job failed: pod 0: cannot pull image "example/private:1": pull access denied')


def test_secrets_need_kubernetes(docker_pachd: PachdProcess, engine: FakeDocker) -> None:
    request = pipeline("secretive", "true", [("data", MAP)])
    request.transform.secrets.add(name="creds", mount_path="/etc/creds")
    with Client(docker_pachd.address) as client:
        info, logs = job_on_one_file(client, request)
    assert info.state == pps_pb2.JOB_FAILURE
    assert logs == b"pachd | job failed: pod 0: secrets need the kubernetes executor\n"
    assert engine.created == []


def test_containers_outlive_a_pachd_crash(tmp_path: Path, engine: FakeDocker) -> None:
    """kill -9 of pachd mid-job: the container runs on, the restarted pachd adopts it."""
    engine.images.add(SHIM_IMAGE)
    marker = tmp_path / "started"
    server = start_pachd(tmp_path, engine)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            script = f"touch {marker}; while [ ! -e {marker}.go ]; do sleep 0.1; done; cp /pfs/data/f /pfs/out/f"
            client.create_pipeline(pipeline("slow", script, [("data", MAP)]))
            with client.commit("data") as commit:
                client.put_file("data", commit.id, "f", b"kept\n")
            wait_until(marker.exists, what="the container to start")
        server.kill()
        server.start()
        (tmp_path / "started.go").touch()
        with Client(server.address) as client:
            info = only_job(client, "slow")
            assert info.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes("slow", info.output_commit.id, "f") == b"kept\n"
    finally:
        server.stop()
    assert [c["name"] for c in engine.created] == [f"pach-{info.job.id}-0-0"]  # adopted, not replaced
    assert [c["State"]["ExitCode"] for c in engine.containers()] == [0]


# The executor alone

def spec_of(job_id: str, image: str, *command: str, pods: int = 1) -> JobSpec:
    return JobSpec(job_id=job_id, pipeline="p", pod_count=pods, indices=tuple(range(pods)), image=image,
                   command=command, env={"GREETING": "hello"}, max_restarts=1)


async def outcome(executor: DockerExecutor, job_id: str, pods: int) -> list[PodEvent]:
    """The job's events until every pod succeeded or gave up."""
    seen: list[PodEvent] = []
    async with asyncio.timeout(60):
        async for event in executor.events(job_id):
            seen.append(event)
            if sum(e.phase in (PodPhase.SUCCEEDED, PodPhase.GAVE_UP) for e in seen) == pods:
                return seen
    return seen


async def test_the_executor_alone_on_the_fake_engine(engine: FakeDocker) -> None:
    engine.images.add("example/tool:1")
    executor = DockerExecutor(docker_host=engine.url, pachd_address="pachd.example:650", base_env={"A": "1"},
                              image_pull_policy="Always", privileged=True)
    await executor.recover()
    spec = spec_of("f" * 32, "example/tool:1", "sh", "-c", 'echo "$GREETING from $PACH_POD_INDEX"; exit 1', pods=2)
    await executor.start(spec)
    await executor.start(spec)  # idempotent
    events = await outcome(executor, spec.job_id, 2)
    for index in (0, 1):  # the first container and one replacement (max_restarts=1), in order
        assert [(e.name[-4:], e.phase) for e in events if e.index == index] == [
            (f"-{index}-0", PodPhase.STARTED), (f"-{index}-0", PodPhase.CRASHED),
            (f"-{index}-1", PodPhase.STARTED), (f"-{index}-1", PodPhase.GAVE_UP)]
    assert {e.reason for e in events if e.phase is PodPhase.GAVE_UP} == {"exit code 1"}
    lines = [(line.index, line.attempt, line.line) async for line in executor.logs(spec.job_id)]
    assert lines == [(0, 0, b"hello from 0"), (0, 1, b"hello from 0"), (1, 0, b"hello from 1"), (1, 1, b"hello from 1")]
    assert engine.pulls == ["example/tool:1"]  # Always: pulled although present
    body = engine.created[0]["body"]
    assert body["HostConfig"]["Privileged"] is True and "ExtraHosts" not in body["HostConfig"]
    assert "PACHD_PORT_650_TCP_ADDR=pachd.example" in body["Env"] and "A=1" in body["Env"]
    assert await executor.node_count() == 1
    await executor.delete(spec.job_id)
    await executor.delete(spec.job_id)  # nothing left: no error
    assert engine.containers() == []
    await executor.close()


async def test_an_unreachable_engine_is_unavailable() -> None:
    executor = DockerExecutor(docker_host=f"tcp://127.0.0.1:{free_port()}", pachd_address="pachd:650",
                              base_env={}, image_pull_policy="IfNotPresent")
    await executor.recover()  # logs the problem; tried again by start()
    with pytest.raises(Unavailable):
        await executor.start(spec_of("e" * 32, "busybox", "true"))
    with pytest.raises(Unavailable):
        await executor.delete("e" * 32)
    await executor.close()


def _real_engine() -> str:
    """Why no real engine can be used here, or "" when `docker version` answers."""
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    try:
        probe = subprocess.run(["docker", "version"], capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "`docker version` timed out"
    if probe.returncode != 0:
        return (probe.stderr.strip().splitlines() or ["`docker version` failed"])[-1]
    return ""


async def test_a_real_engine() -> None:
    problem = _real_engine()
    if problem:
        pytest.skip(f"no Docker engine: {problem}")
    host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    executor = DockerExecutor(docker_host=host, pachd_address="pachd:650", base_env={},
                              image_pull_policy="IfNotPresent")
    spec = spec_of(os.urandom(16).hex(), "busybox:1.36", "sh", "-c", 'echo "$GREETING from $PACH_POD_NAME"')
    try:
        await executor.recover()
        await executor.start(spec)
        events = await outcome(executor, spec.job_id, 1)
        assert [e.phase for e in events] == [PodPhase.STARTED, PodPhase.SUCCEEDED]
        lines = [line.line async for line in executor.logs(spec.job_id)]
        assert lines == [f"hello from pach-{spec.job_id}-0-0".encode()]
    finally:
        await executor.delete(spec.job_id)
        await executor.close()
