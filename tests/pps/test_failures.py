"""Failures: user code failing, return codes, a pod killed mid-run, pachd killed mid-pipeline."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.beacon import Beacon
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, REDUCE, only_job, pipeline
from tests.support.wait import wait_until

TIMEOUT = 90


def commit_file(client: Client, repo: str, path: str, data: bytes) -> str:
    with client.commit(repo) as c:
        client.put_file((repo, c.id), path, data)
    return c.id


def test_failing_code_fails_the_job_and_stops_the_dag(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("broken", "echo boom >&2\nexit 1", [("data", MAP)]))
    client.create_pipeline(pipeline("after", "cp -r /pfs/broken/. /pfs/out/", [("broken", REDUCE)]))
    commit_file(client, "data", "f", b"x\n")
    job = only_job(client, "broken")
    assert job.state == pps_pb2.JOB_FAILURE
    assert client.inspect_commit(("broken", job.output_commit.id)).cancelled
    assert b"0 | boom\n" in b"".join(client.get_logs(job.job.id))
    client.create_pipeline(pipeline("witness", "true", [("data", MAP)]))  # a barrier: runs after the above
    only_job(client, "witness")
    assert client.list_job("after") == []


def test_accepted_return_codes_succeed(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("lenient", "cp /pfs/data/f /pfs/out/f\nexit 3", [("data", MAP)], accept=[3]))
    commit_file(client, "data", "f", b"x\n")
    job = only_job(client, "lenient")
    assert job.state == pps_pb2.JOB_SUCCESS
    assert client.get_file_bytes(("lenient", job.output_commit.id), "f") == b"x\n"


def test_after_a_failed_job_the_next_builds_on_the_last_good_output(client: Client) -> None:
    """The failed job's data is not skipped: the next job sees it too (its diff starts at the last success)."""
    beacon = Beacon()
    script = f"""
if grep -q bad /pfs/data/f && [ "$({beacon.command('first')})" = 1 ]; then exit 1; fi
cat /pfs/data/f >> /pfs/out/log
"""
    client.create_repo("data")
    client.create_pipeline(pipeline("picky", script, [("data", MAP)]))
    for text in (b"good1\n", b"bad\n", b"good2\n"):
        commit_file(client, "data", "f", text)
    wait_until(lambda: len(client.list_job("picky")) == 3, what="three jobs")
    jobs = [client.inspect_job(j.job.id, block_state=True, timeout=TIMEOUT) for j in client.list_job("picky")]
    assert sorted(j.state for j in jobs) == sorted([pps_pb2.JOB_SUCCESS, pps_pb2.JOB_FAILURE, pps_pb2.JOB_SUCCESS])
    last = next(j for j in jobs if any(i.commit.id == "master/2" for i in j.inputs))
    assert client.get_file_bytes(("picky", last.output_commit.id), "log") == b"good1\nbad\ngood2\n"


def _pod_pids(data_dir: Path, job_id: str) -> list[int]:
    pids = []
    for pid_file in (data_dir / "pods" / job_id).glob("*/pid"):
        try:
            pids.append(int(pid_file.read_text().split()[0]))
        except (OSError, ValueError, IndexError):
            pass
    return pids


def test_a_pod_killed_mid_run_is_replaced_and_its_shard_counted_once(own_pachd: PachdProcess) -> None:
    beacon = Beacon()
    script = f"""
cat /pfs/data/* >> /pfs/out/all
if [ "$({beacon.command('first')})" = 1 ]; then sleep 600; fi
"""
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(f"f{i}", f"line {i}\n".encode()) for i in range(12)])
        client.create_pipeline(pipeline("slow", script, [("data", MAP)], parallelism=1))
        beacon.wait_hits("first")  # the first pod is about to sleep
        job_id = client.list_job("slow")[0].job.id
        for pid in _pod_pids(own_pachd.data_dir, job_id):
            os.kill(pid, signal.SIGKILL)
        job = client.inspect_job(job_id, block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS
        lines = client.get_file_bytes(("slow", job.output_commit.id), "all").splitlines()
        assert sorted(lines) == sorted(f"line {i}".encode() for i in range(12))


def test_pachd_killed_mid_pipeline_resumes_without_duplicates(own_pachd: PachdProcess) -> None:
    beacon = Beacon()
    script = f"""
{beacon.command('gate')}
cat /pfs/data/f >> /pfs/out/all
"""
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("gated", script, [("data", MAP)]))
        for text in (b"one\n", b"two\n"):
            commit_file(client, "data", "f", text)
        wait_until(lambda: any(j.state == pps_pb2.JOB_RUNNING for j in client.list_job("gated")),
                   what="a running job")
    own_pachd.kill()
    beacon.open("gate")
    own_pachd.start()
    with Client(own_pachd.address) as client:
        commit_file(client, "data", "f", b"three\n")
        flushed = client.flush_commit([("data", "master/2")], timeout=TIMEOUT)
        assert client.get_file_bytes(("gated", flushed[-1].commit.id), "all") == b"one\ntwo\nthree\n"
        jobs = [client.inspect_job(j.job.id, block_state=True, timeout=TIMEOUT) for j in client.list_job("gated")]
        assert len(jobs) == 3 and all(j.state == pps_pb2.JOB_SUCCESS for j in jobs)
        assert len(client.list_commit([("gated", "")])) == 3
