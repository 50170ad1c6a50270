"""Several pachd replicas on one etcd and one bucket: any serves any request; one drives each
pipeline, and when it dies another takes over within the lease time."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.etcd import EtcdServer
from tests.support.gcs import GcsEmulator
from tests.support.beacon import Beacon
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import wait_until

LEASE = 3.0
TIMEOUT = 90


@pytest.fixture
def replicas(tmp_path: Path, gcs_emulator: GcsEmulator) -> Iterator[list[PachdProcess]]:
    etcd = EtcdServer(tmp_path / "etcd").start()
    bucket = f"replicas-{uuid.uuid4().hex[:8]}"
    gcs_emulator.create_bucket(bucket)
    args = ["--storage", "gcs", "--gcs-bucket", bucket, "--lease-ttl", str(LEASE)]
    env = {"STORAGE_EMULATOR_HOST": gcs_emulator.host}
    servers = [PachdProcess(tmp_path / f"replica{n}", etcd=etcd.address, extra_args=args, env=env).start()
               for n in range(2)]
    yield servers
    for server in servers:
        server.stop()
    etcd.stop()


def _driver(servers: list[PachdProcess], job_id: str) -> PachdProcess:
    """The replica running the job's pods (each replica keeps its pods under its own data dir)."""
    wait_until(lambda: any((s.data_dir / "pods" / job_id).exists() for s in servers), what="the job's pods")
    return next(s for s in servers if (s.data_dir / "pods" / job_id).exists())


def test_any_replica_serves_and_the_other_takes_over(replicas: list[PachdProcess], tmp_path: Path) -> None:
    first, second = replicas
    beacon = Beacon()
    script = f"{beacon.command('gate')}\ncat /pfs/data/f >> /pfs/out/all"
    with Client(first.address) as a, Client(second.address) as b:
        a.create_repo("data")
        b.create_pipeline(pipeline("gated", script, [("data", MAP)]))
        with a.commit("data") as c:
            b.put_file(("data", c.id), "f", b"one\n")  # a commit started on one replica, written through the other
        wait_until(lambda: any(j.state == pps_pb2.JOB_RUNNING for j in a.list_job("gated")), timeout=TIMEOUT,
                   what="the job to run")
        job_id = a.list_job("gated")[0].job.id
        driving = _driver(replicas, job_id)
        survivor = second if driving is first else first
    driving.kill()  # mid-job
    beacon.open("gate")
    with Client(survivor.address) as client:
        job = client.inspect_job(job_id, block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", b"two\n")
        flushed = client.flush_commit([("data", c.id)], timeout=TIMEOUT)
        assert client.get_file_bytes(("gated", flushed[-1].commit.id), "all") == b"one\ntwo\n"
        assert len(client.list_job("gated")) == 2
        outputs = client.list_commit([("gated", "")])
        assert len(outputs) == 2  # each input commit's output exactly once
        assert sorted(p.id for c in outputs for p in c.provenance) == ["master/0", "master/1"]
