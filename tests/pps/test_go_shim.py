"""Pods that run v1.2's job-shim: `--job-shim-command` names the program, and local
pods find pachd through Kubernetes' service variables as that shim expects."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support import go_job_shim
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, REDUCE, only_job, pipeline

TIMEOUT = 120


@pytest.fixture
def go_shim_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    # The program itself, on this Python (which pods see): pods see nothing of the tests' tree.
    program = tmp_path / "go-shim" / "job-shim"
    program.parent.mkdir()
    program.write_text(f"#!{sys.executable}\n" + Path(go_job_shim.__file__).read_text())
    program.chmod(0o755)
    tmp_path.chmod(0o755)
    server = PachdProcess(tmp_path / "data", extra_args=["--job-shim-command", str(program),
                                                         "--allow-anonymous-pods"]).start()
    yield server
    server.stop()


def test_a_pipeline_runs_with_the_v1_2_shim(go_shim_pachd: PachdProcess) -> None:
    with Client(go_shim_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(f"f{i}", b"%d\n" % i) for i in range(6)])
        client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/; env > /pfs/out/env; echo copied",
                                        [("data", MAP)], parallelism=2))
        client.create_pipeline(pipeline("total", "cat /pfs/copy/f* | sort > /pfs/out/all", [("copy", REDUCE)]))
        flushed = client.flush_commit([("data", c.id)], timeout=TIMEOUT)
        out = {i.commit.repo.name: i.commit.id for i in flushed}
        assert client.get_file_bytes(("total", out["total"]), "all") == b"".join(b"%d\n" % i for i in range(6))
        job = client.inspect_job(client.list_job("copy")[0].job.id, block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS and len(job.pod_commits) == 2
        env = client.get_file_bytes(("copy", out["copy"]), "env").decode()
        assert {"PACHD_PORT_650_TCP_ADDR=127.0.0.1", f"PACHD_PORT_650_TCP_PORT={go_shim_pachd.port}"} <= set(
            env.splitlines())
        assert b"".join(client.get_logs(job.job.id)).splitlines() == [b"0 | copied", b"1 | copied"]


def test_a_failing_command_fails_the_job_under_the_v1_2_shim(go_shim_pachd: PachdProcess) -> None:
    with Client(go_shim_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", b"x\n")
        client.create_pipeline(pipeline("broken", "exit 3", [("data", MAP)]))
        assert only_job(client, "broken", timeout=TIMEOUT).state == pps_pb2.JOB_FAILURE
