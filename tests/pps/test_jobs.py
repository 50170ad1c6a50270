"""What a job's code sees: environment, /pfs layout, logs; and how pods are counted."""

from __future__ import annotations

from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.pachd import PachdProcess
from tests.support.pipelines import GLOBAL, MAP, pipeline
from tests.support.wait import wait_until

TIMEOUT = 90


def test_job_environment_and_pfs_layout(client: Client) -> None:
    client.create_repo("data")
    client.create_repo("extra")
    for repo in ("data", "extra"):
        with client.commit(repo) as c:
            client.put_file((repo, c.id), "f", repo.encode())
    script = """
env | grep -E '^(PACH_|GREETING)' | grep -v -e POD -e PFS_MODE -e JOB_TOKEN | sort > /pfs/out/env
ls /pfs | sort > /pfs/out/layout
"""
    client.create_pipeline(pipeline("look", script, [("data", MAP), ("extra", GLOBAL)], env={"GREETING": "hello"}))
    out = client.flush_commit([("data", "master/0")], timeout=TIMEOUT)[-1]
    env = dict(line.split("=", 1) for line in client.get_file_bytes(("look", out.commit.id), "env").decode().split())
    assert env == {"GREETING": "hello", "PACH_DATA_COMMIT_ID": "master/0", "PACH_EXTRA_COMMIT_ID": "master/0",
                   "PACH_OUTPUT_COMMIT_ID": env["PACH_OUTPUT_COMMIT_ID"]}
    assert env["PACH_OUTPUT_COMMIT_ID"].startswith("pod_")
    assert client.get_file_bytes(("look", out.commit.id), "layout").split() == [b"data", b"extra", b"out"]


def test_second_job_sees_prev(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("runs", "ls /pfs > /pfs/out/seen\n[ -d /pfs/prev ] && echo yes >> /pfs/out/seen; true",
                                    [("data", MAP)]))
    for text in (b"1", b"2"):
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", text)
    first, second = (client.flush_commit([("data", f"master/{n}")], timeout=TIMEOUT)[-1] for n in (0, 1))
    assert b"prev" not in client.get_file_bytes(("runs", first.commit.id), "seen")
    assert client.get_file_bytes(("runs", second.commit.id), "seen").split() == [b"data", b"out", b"prev", b"yes"]


def test_coefficient_parallelism_uses_the_node_count(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [(f"f{i}", b"x\n") for i in range(20)])
    request = pipeline("wide", "cat /pfs/data/* >> /pfs/out/all", [("data", MAP)])
    request.parallelism_spec.CopyFrom(pps_pb2.ParallelismSpec(strategy=pps_pb2.ParallelismSpec.COEFFICIENT,
                                                              coefficient=2.0))
    client.create_pipeline(request)
    out = client.flush_commit([("data", "master/0")], timeout=TIMEOUT)[-1]
    job = client.list_job("wide")[0]
    assert len(job.pod_commits) == 2  # one node here, times two
    assert len(client.get_file_bytes(("wide", out.commit.id), "all").splitlines()) == 20


def test_logs_are_per_pod_in_order(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [(f"f{i}", b"x\n") for i in range(20)])
    client.create_pipeline(pipeline("chatty", "for i in 1 2 3; do echo line $i; done", [("data", MAP)], parallelism=2))
    client.flush_commit([("data", "master/0")], timeout=TIMEOUT)
    logs = b"".join(client.get_logs(client.list_job("chatty")[0].job.id)).decode().splitlines()
    assert logs == [f"{pod} | line {i}" for pod in (0, 1) for i in (1, 2, 3)]


def test_create_job_may_name_a_pipeline_that_does_not_exist(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "file", b"foo\n")
    client.create_repo("named", provenance=["data"])  # as v1.2's TestDuplicatedJob does
    request = pps_pb2.CreateJobRequest(
        transform=pps_pb2.Transform(cmd=["cp", "/pfs/data/file", "/pfs/out/file"]),
        pipeline=pps_pb2.Pipeline(name="named"),
        inputs=[pps_pb2.JobInput(commit=pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id=c.id))],
    )
    first, second = client.create_job(request), client.create_job(request)
    assert first.id == second.id
    request.force = True
    assert client.create_job(request).id != first.id
    info = client.inspect_job(first.id, block_state=True, timeout=TIMEOUT)
    assert info.state == pps_pb2.JOB_SUCCESS and info.output_commit.repo.name == "named"
    assert client.get_file_bytes(("named", info.output_commit.id), "file") == b"foo\n"
    assert {j.job.id for j in client.list_job("named")} >= {first.id}


def test_a_job_has_a_start_time_before_any_pod_started(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "file", b"foo\n")
    request = pps_pb2.CreateJobRequest(
        transform=pps_pb2.Transform(cmd=["true"]),
        inputs=[pps_pb2.JobInput(commit=pfs_pb2.Commit(repo=pfs_pb2.Repo(name="data"), id=c.id))],
    )
    created = client.create_job(request)
    started = client.inspect_job(created.id).started  # no pod has claimed it yet: starting one takes longer
    assert started.seconds > 0
    finished = client.inspect_job(created.id, block_state=True, timeout=TIMEOUT)
    assert finished.started == started  # kept when the pod claims it


def test_a_pods_local_data_is_removed_once_it_ended_and_its_log_kept(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(f"f{i}", b"x" * 1000) for i in range(10)])
        client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/; echo copied", [("data", MAP)]))
        out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1]
        job = client.list_job("copy")[0]
        pods = own_pachd.data_dir / "pods" / job.job.id
        wait_until(lambda: not list(pods.glob("*/pfs")), what="the pod's /pfs to be removed")
        assert [p.name for p in pods.glob("*/log")]  # the log stays
        assert b"".join(client.get_logs(job.job.id)) == b"0 | copied\n"
        assert len(client.list_file(("copy", out.commit.id))) == 10
