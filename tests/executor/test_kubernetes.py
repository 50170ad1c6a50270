"""The Kubernetes executor, through the real `kubernetes` client, against a fake
API server whose kubelet runs pods as local processes (tests/support/fake_kubernetes.py)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import kubernetes_validate
import pytest

from pachyderm_client import Client
from pachd.executor.base import JobSpec, SecretMount
from pachd.executor.kubernetes import JOB_LABEL, KubernetesExecutor
from pachyderm_client.proto import pps_pb2
from tests.pps.test_tutorial import sums
from tests.support.cli import pachctl
from tests.support.examples import fruit_stand_first_commit
from tests.support.fake_kubernetes import FakeKubernetes, node
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, only_job, pipeline
from tests.support.wait import wait_until


def start_pachd(tmp_path: Path, cluster: FakeKubernetes, *flags: str) -> PachdProcess:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    server = PachdProcess(tmp_path / "data")
    server.extra_args = ["--executor", "kubernetes", "--kubeconfig", str(kubeconfig),
                         "--pod-pachd-address", server.address, *flags]
    return server.start()


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[FakeKubernetes]:
    """The fake API server; a test parametrizes it indirectly with a server version."""
    fake = FakeKubernetes(tmp_path / "cluster", version=getattr(request, "param", (1, 30))).start()
    yield fake
    fake.stop()


@pytest.fixture
def kube_pachd(tmp_path: Path, cluster: FakeKubernetes) -> Iterator[PachdProcess]:
    server = start_pachd(tmp_path, cluster)
    yield server
    server.stop()


def running_pods(cluster: FakeKubernetes, job_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [p for p in cluster.list("pods", selector=f"{JOB_LABEL}={job_id}") if p["status"]["phase"] == "Running"]


def kill_pods(cluster: FakeKubernetes, job_id: str, count: int) -> None:
    """Kills each running pod of the job as it appears, until `count` were killed."""
    killed: set[str] = set()

    def kill_next() -> bool:
        for pod in running_pods(cluster, job_id):
            if pod["metadata"]["name"] not in killed:
                killed.add(pod["metadata"]["name"])
                cluster.kill_pod(pod["metadata"]["name"])
        return len(killed) == count

    cluster.wait_for(kill_next)


def test_fruit_stand_runs_as_kubernetes_jobs(kube_pachd: PachdProcess, cluster: FakeKubernetes) -> None:
    address = kube_pachd.address
    sum_commit = fruit_stand_first_commit(address)
    with Client(address) as client:
        assert sums(client, sum_commit) == {"apple": 133, "orange": 205, "banana": 165}
        jobs = {info.pipeline.name: info.job.id for info in client.list_job()}

    assert len(cluster.created_jobs) == 2  # one batch/v1 Job per job, each valid (the fake validates too)
    for job in cluster.created_jobs:
        kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    job = next(j for j in cluster.created_jobs if j["metadata"]["labels"]["pipeline"] == "filter")
    assert job["metadata"]["labels"][JOB_LABEL] == jobs["filter"]
    spec = job["spec"]
    assert spec["parallelism"] == spec["completions"] == 1 and spec["completionMode"] == "Indexed"
    container = spec["template"]["spec"]["containers"][0]
    assert container["image"] == "pachyderm/job-shim" and container["command"] == ["job-shim", jobs["filter"]]
    assert container["imagePullPolicy"] == "IfNotPresent"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["PACHD_PORT_650_TCP_ADDR"] == "127.0.0.1" and env["PACHD_PORT_650_TCP_PORT"] == str(kube_pachd.port)
    assert env["PACH_DATA_COMMIT_ID"]
    pods = cluster.list("pods", selector=f"{JOB_LABEL}={jobs['filter']},pipeline=filter")
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"]

    logs = pachctl(address, "get-logs", jobs["sum"])
    assert logs.code == 0, logs.err


def test_a_killed_pod_is_replaced(kube_pachd: PachdProcess, cluster: FakeKubernetes, tmp_path: Path) -> None:
    marker = tmp_path / "first-attempt"
    script = f"""
        if [ ! -e {marker} ]; then touch {marker}; echo first; sleep 60; fi
        echo second
        cp /pfs/data/f /pfs/out/f
    """
    with Client(kube_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("copy", script, [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"fruit\n")
        wait_until(lambda: len(client.list_job("copy")) == 1, what="the job")
        job_id = client.list_job("copy")[0].job.id
        first = cluster.wait_for(lambda: running_pods(cluster, job_id) if marker.exists() else None)
        cluster.kill_pod(first[0]["metadata"]["name"])  # as the OOM killer would
        info = only_job(client, "copy")
        assert info.state == pps_pb2.JOB_SUCCESS
        assert client.get_file_bytes(("copy", info.output_commit.id), "f") == b"fruit\n"
        logs = b"".join(client.get_logs(job_id))
        assert logs.index(b"0 | first") < logs.index(b"0 | second")  # both attempts, in order
    # The job succeeds when its shim says so; its process may still be exiting.
    cluster.wait_for(lambda: sorted(p["status"]["phase"] for p in cluster.list("pods", selector=f"{JOB_LABEL}={job_id}"))
                     == ["Failed", "Succeeded"])
    assert len(cluster.created_jobs) == 1  # Kubernetes replaced the pod; pachd made no second Job


@pytest.mark.parametrize("cluster", [(1, 30), (1, 20)], indirect=True, ids=["indexed", "1.20-job-per-pod"])
def test_a_pod_failing_past_its_restarts_fails_the_job(kube_pachd: PachdProcess, cluster: FakeKubernetes) -> None:
    """On 1.20 the pod's own Job replaces it (backoffLimit), as an Indexed Job does per index."""
    with Client(kube_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("stuck", "sleep 60", [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"x\n")
        wait_until(lambda: len(client.list_job("stuck")) == 1, what="the job")
        job_id = client.list_job("stuck")[0].job.id
        kill_pods(cluster, job_id, 4)  # the first pod and its 3 replacements
        info = only_job(client, "stuck")
        logs = b"".join(client.get_logs(job_id))
    assert info.state == pps_pb2.JOB_FAILURE
    assert b"pachd | job failed: pod 0: exit code 137 (Error)" in logs
    assert len(cluster.list("pods", selector=f"{JOB_LABEL}={job_id}")) == 4
    assert len(cluster.created_jobs) == 1  # Kubernetes replaced the pods within the one Job


def test_deleting_pipelines_removes_their_kubernetes_objects(kube_pachd: PachdProcess,
                                                             cluster: FakeKubernetes) -> None:
    with Client(kube_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("one", "sleep 60", [("data", MAP)]))
        client.create_pipeline(pipeline("two", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"x\n")
        assert only_job(client, "two").state == pps_pb2.JOB_SUCCESS
        cluster.wait_for(lambda: cluster.list("pods", selector="pipeline=one"))
        client.delete_pipeline("one")
        assert cluster.list("jobs", selector="pipeline=one") == []
        cluster.wait_for(lambda: cluster.list("pods", selector="pipeline=one") == [])
        assert cluster.list("jobs", selector="pipeline=two")
        client.delete_all()
    assert cluster.list("jobs") == [] and cluster.list("pods") == []


def test_secrets_are_mounted_where_the_transform_says(kube_pachd: PachdProcess, cluster: FakeKubernetes,
                                                     tmp_path: Path) -> None:
    mount = tmp_path / "secret-mount"
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
              "data": {"token": base64.b64encode(b"s3cr3t").decode()}}
    cluster.create("secrets", "default", secret)
    request = pipeline("reader", f"cp {mount}/token /pfs/out/token", [("data", MAP)])
    request.transform.secrets.add(name="creds", mount_path=str(mount))
    with Client(kube_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(request)
        with client.commit("data") as commit:
            client.put_file(("data", commit.id), "f", b"x\n")
        info = only_job(client, "reader")
        assert info.state == pps_pb2.JOB_SUCCESS
        assert client.get_file_bytes(("reader", info.output_commit.id), "token") == b"s3cr3t"
    volumes = cluster.created_jobs[0]["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "secret-0", "secret": {"secretName": "creds"}}]


def test_pull_policy_never_with_a_missing_image_fails_the_job(tmp_path: Path, cluster: FakeKubernetes) -> None:
    server = start_pachd(tmp_path, cluster, "--image-pull-policy", "Never")
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            request = pipeline("nowhere", "true", [("data", MAP)])
            request.transform.image = "example/not-on-the-node:1"
            client.create_pipeline(request)
            with client.commit("data") as commit:
                client.put_file(("data", commit.id), "f", b"x\n")
            info = only_job(client, "nowhere")
            logs = b"".join(client.get_logs(info.job.id))
    finally:
        server.stop()
    assert info.state == pps_pb2.JOB_FAILURE
    assert b"pachd | job failed: pod 0: ErrImageNeverPull" in logs and b"example/not-on-the-node:1" in logs


def test_a_job_whose_image_cannot_be_pulled_stays_pulling(tmp_path: Path) -> None:
    cluster = FakeKubernetes(tmp_path / "cluster", missing={"example/nonexistent:1"}).start()
    server = start_pachd(tmp_path, cluster)
    try:
        with Client(server.address) as client:
            job = client.create_job(pps_pb2.CreateJobRequest(
                transform=pps_pb2.Transform(image="example/nonexistent:1", cmd=["true"])))

            def waiting() -> bool:
                return any(line.startswith(b"pachd | job waits for its image: pod 0: ErrImagePull")
                           for line in b"".join(client.get_logs(job.id)).splitlines())

            wait_until(waiting, timeout=60, what="the job to report the failed pull")
            info = client.inspect_job(job.id)
    finally:
        server.stop()
        cluster.stop()
    assert info.state == pps_pb2.JOB_PULLING  # as v1.2 (TestJobState): it waits for the image, it does not fail


def test_coefficient_parallelism_counts_schedulable_nodes(tmp_path: Path) -> None:
    nodes = [node("a"), node("b"), node("c", unschedulable=True), node("d", ready=False)]
    cluster = FakeKubernetes(tmp_path / "cluster", nodes=nodes).start()
    server = start_pachd(tmp_path, cluster)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            request = pipeline("spread", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)])
            request.parallelism_spec.CopyFrom(pps_pb2.ParallelismSpec(strategy=pps_pb2.ParallelismSpec.COEFFICIENT, coefficient=2))
            client.create_pipeline(request)
            with client.commit("data") as commit:
                for k in range(8):
                    client.put_file(("data", commit.id), f"f{k}", b"line\n" * 100)
            info = only_job(client, "spread")
            assert info.state == pps_pb2.JOB_SUCCESS
    finally:
        server.stop()
        cluster.stop()
    assert cluster.created_jobs[0]["spec"]["parallelism"] == 4  # 2 schedulable nodes x 2


def test_pods_outlive_a_pachd_crash(tmp_path: Path, cluster: FakeKubernetes) -> None:
    """kill -9 of pachd mid-job: the pod runs on, the restarted pachd adopts it."""
    marker = tmp_path / "started"
    server = start_pachd(tmp_path, cluster)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            script = f"touch {marker}; while [ ! -e {marker}.go ]; do sleep 0.1; done; cp /pfs/data/f /pfs/out/f"
            client.create_pipeline(pipeline("slow", script, [("data", MAP)]))
            with client.commit("data") as commit:
                client.put_file(("data", commit.id), "f", b"kept\n")
            wait_until(marker.exists, what="the pod to start")
        server.kill()
        server.start()
        (tmp_path / "started.go").touch()
        with Client(server.address) as client:
            info = only_job(client, "slow")
            assert info.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes(("slow", info.output_commit.id), "f") == b"kept\n"
            assert len(client.list_commit([("slow", "")])) == 1
    finally:
        server.stop()
    assert len(cluster.created_jobs) == 1
    assert [p["status"]["phase"] for p in cluster.list("pods")] == ["Succeeded"]


def test_job_objects_validate_with_secrets_and_fuse() -> None:
    from kubernetes import client

    executor = KubernetesExecutor(api=client.ApiClient(client.Configuration()), namespace="pachyderm",
                                  pachd_address="pachd:650", base_env={"PACH_PFS_MODE": "fuse"},
                                  image_pull_policy="Always", privileged=True)
    spec = JobSpec(job_id="0" * 32, pipeline="_odd_name", pod_count=3, indices=(0, 1, 2), image="me/code:2",
                   command=("job-shim", "0" * 32), env={"A": "1"}, secrets=(SecretMount("s", "/etc/s"),),
                   labels={"app": "0" * 32, "suite": "pachyderm", "pipeline": "_odd_name"})
    job = executor.job_object(spec, "pach-" + "0" * 32)
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    template = job["spec"]["template"]
    assert "pipeline" not in template["metadata"]["labels"]  # not a valid label value; kept as an annotation
    assert template["metadata"]["annotations"]["pachyderm.io/pipeline"] == "_odd_name"
    assert template["spec"]["containers"][0]["securityContext"] == {"privileged": True}
    assert job["spec"]["backoffLimitPerIndex"] == 3


# A server without Indexed Jobs (Kubernetes before 1.21, or backoffLimitPerIndex before 1.29)

@pytest.mark.parametrize("how", ["version 1.20", "fields dropped"])
def test_a_server_without_indexed_jobs_gets_one_job_per_pod(tmp_path: Path, how: str) -> None:
    """Told by the server's version, or (a server that says 1.30 but has the
    feature off) by the created Job coming back without completionMode."""
    if how == "version 1.20":
        cluster = FakeKubernetes(tmp_path / "cluster", version=(1, 20)).start()
    else:
        cluster = FakeKubernetes(tmp_path / "cluster", indexed_jobs=False).start()
    server = start_pachd(tmp_path, cluster)
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            script = 'echo "pod $PACH_POD_INDEX"; cp -r /pfs/data/. /pfs/out/'
            client.create_pipeline(pipeline("spread", script, [("data", MAP)], parallelism=3))
            with client.commit("data") as commit:
                client.put_files(("data", commit.id), [(f"f{k}", b"line\n" * 50) for k in range(9)])
            info = only_job(client, "spread")
            assert info.state == pps_pb2.JOB_SUCCESS
            assert {f.file.path for f in client.list_file(("spread", info.output_commit.id), "")} == {
                f"/f{k}" for k in range(9)}
            logs = b"".join(client.get_logs(info.job.id))
            assert all(f"{k} | pod {k}".encode() in logs for k in range(3))
    finally:
        server.stop()
        cluster.stop()
    per_pod = [job for job in cluster.created_jobs if "completionMode" not in job["spec"]]
    assert len(per_pod) == 3 and len(cluster.created_jobs) == (3 if how == "version 1.20" else 4)
    assert sorted(job["metadata"]["labels"]["pachyderm.io/index"] for job in per_pod) == ["0", "1", "2"]
    for job in per_pod:
        kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
        assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1 and job["spec"]["backoffLimit"] == 3
    if how == "fields dropped":  # the first, Indexed Job was taken back: none of it is left
        assert cluster.created_jobs[0]["spec"]["completionMode"] == "Indexed"
        assert len(cluster.list("jobs")) == 3



# Deleting a job while its Job is being created

def executor_of(cluster: FakeKubernetes, tmp_path: Path) -> KubernetesExecutor:
    from kubernetes import client
    from kubernetes import config as kube_config

    settings = client.Configuration()
    kube_config.load_kube_config(config_file=str(cluster.write_kubeconfig(tmp_path / "kubeconfig")),
                                 client_configuration=settings)
    return KubernetesExecutor(api=client.ApiClient(settings), namespace="default", pachd_address="127.0.0.1:1",
                              base_env={}, image_pull_policy="Never")


def sleeper(job_id: str) -> JobSpec:
    return JobSpec(job_id=job_id, pipeline="one", pod_count=1, indices=(0,), image="job-shim",
                   command=("sleep", "60"), env={})


async def test_a_job_deleted_while_its_kubernetes_job_is_created_keeps_no_job(cluster: FakeKubernetes,
                                                                            tmp_path: Path) -> None:
    """The job's driver is stopped (its start() cancelled) while the create is on its way,
    and the create lands only after delete() has listed the job's Jobs: once delete()
    returns, no Job of the job is left."""
    executor = executor_of(cluster, tmp_path)
    cluster.hold_job_creates()
    try:
        starting = asyncio.create_task(executor.start(sleeper("a" * 32)))
        await asyncio.to_thread(cluster.wait_for, lambda: cluster.held_creates == 1)
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await executor.delete("a" * 32)
        await asyncio.to_thread(cluster.wait_for, lambda: cluster.landed_creates == 1)
        assert cluster.list("jobs") == []
    finally:
        await executor.close()


async def test_a_deleted_job_gets_no_kubernetes_job_from_a_later_start(cluster: FakeKubernetes,
                                                                      tmp_path: Path) -> None:
    """A driver that starts a job's pods after the job was deleted (started again
    for it meanwhile) creates nothing."""
    executor = executor_of(cluster, tmp_path)
    try:
        await executor.start(sleeper("b" * 32))
        assert len(cluster.list("jobs")) == 1
        await executor.delete("b" * 32)
        await executor.start(sleeper("b" * 32))
        assert cluster.list("jobs") == [] and len(cluster.created_jobs) == 1
    finally:
        await executor.close()
