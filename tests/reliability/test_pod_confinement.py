"""Local pods are confined like containers: each escape a pipeline's code tries is refused."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.pachd import PachdProcess, pachd_as_nobody
from tests.support.pipelines import MAP, only_job, pipeline

TIMEOUT = 120


def _run(client: Client, name: str, script: str) -> dict[str, str]:
    """Runs `script` as a pipeline over a repo of its own, `data_<name>`, seen at
    /pfs/data; the files it wrote to /pfs/out."""
    repo = f"data_{name}"
    client.create_repo(repo)
    client.create_pipeline(pipeline(name, script.replace("/pfs/data/", f"/pfs/{repo}/"), [(repo, MAP)]))
    with client.commit(repo) as c:
        client.put_file((repo, c.id), "f", b"input\n")
    out = client.flush_commit([(repo, c.id)], timeout=TIMEOUT)[-1]
    assert only_job(client, name).state == pps_pb2.JOB_SUCCESS
    return {info.file.path.strip("/"): client.get_file_bytes((name, out.commit.id), info.file.path).decode().strip()
            for info in client.list_file((name, out.commit.id), "/")}


@pytest.fixture
def pachd_with(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PachdProcess]:
    server = PachdProcess(tmp_path / "data", extra_args=list(getattr(request, "param", []))).start()
    yield server
    server.stop()


@pytest.fixture(params=["root", "nobody"])
def pachd_as_either(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PachdProcess]:
    """A pachd as the tests' own user (root), and one as nobody: its pods then run in user namespaces
    of its user's, as pachd's own user, and get their previous output mounted from inside them."""
    if request.param == "root":
        server = PachdProcess(tmp_path / "data").start()
        yield server
        server.stop()
    else:
        if os.geteuid() != 0:
            pytest.skip("running pachd as nobody takes root")
        with pachd_as_nobody() as server:
            yield server


def test_a_pod_cannot_escape(pachd_as_either: PachdProcess) -> None:
    data_dir = pachd_as_either.data_dir.resolve()
    marker = f"other-repo-secret-{uuid.uuid4().hex}"
    head, tail = marker[:10], marker[10:]  # the script never holds the whole marker
    with Client(pachd_as_either.address) as client:
        client.create_repo("other")
        with client.commit("other") as c:
            client.put_file(("other", c.id), "secret", f"{marker}\n".encode())
        assert subprocess.run(["grep", "-rlq", marker, str(data_dir)]).returncode == 0  # it is in the blocks
        outcome = _run(client, "escape", f"""
id -u > /pfs/out/uid
cat /etc/shadow > /pfs/out/shadow 2>/dev/null; echo $? > /pfs/out/shadow_rc
ls -a {data_dir} > /pfs/out/data_dir 2>/dev/null; echo $? > /pfs/out/data_dir_rc
m={head}; grep -rl "$m{tail}" / --exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr --exclude-dir=.pyenv --exclude-dir=.venv > /pfs/out/found 2>/dev/null; true
echo x > /etc/escaped 2>/dev/null; echo $? > /pfs/out/etc_rc
echo x > {data_dir}/escaped 2>/dev/null; echo $? > /pfs/out/data_dir_write_rc
echo x > /usr/escaped 2>/dev/null; echo $? > /pfs/out/usr_rc
echo x > /tmp/scratch && cat /tmp/scratch > /pfs/out/tmp
cp /pfs/data/f /pfs/out/f
""")
    assert outcome["f"] == "input"  # the pod did run, and read its input
    assert outcome["uid"] != "0"
    assert outcome["shadow_rc"] != "0" and outcome["shadow"] == ""
    assert outcome["data_dir_rc"] != "0" and outcome["data_dir"] == ""
    assert outcome["found"] == ""  # another repo's blocks are nowhere to be seen
    assert outcome["etc_rc"] != "0" and outcome["usr_rc"] != "0" and outcome["data_dir_write_rc"] != "0"
    assert not Path("/etc/escaped").exists() and not (data_dir / "escaped").exists()
    assert outcome["tmp"] == "x"  # a private /tmp it may write


def test_another_pods_tmp_is_not_shared(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        first = _run(client, "first", "echo mine > /tmp/left; ls /tmp > /pfs/out/tmp; true")
        second = _run(client, "second", "ls /tmp > /pfs/out/tmp; true")
    assert first["tmp"] == "left" and second["tmp"] == ""


@pytest.mark.parametrize("pachd_with", [["--pod-network", "none"]], indirect=True)
def test_a_pod_without_network_still_reaches_pachd(pachd_with: PachdProcess) -> None:
    script = f"(echo > /dev/tcp/127.0.0.1/{pachd_with.port}) 2>/dev/null; echo $? > /pfs/out/tcp_rc; cp /pfs/data/f /pfs/out/f"
    with Client(pachd_with.address) as client:
        outcome = _run(client, "offline", "bash -c '" + script + "'")
    assert outcome["f"] == "input"  # through pachd's socket: inputs in, output back
    assert outcome["tcp_rc"] != "0"  # but not even loopback TCP


def test_a_pod_has_the_hosts_network_by_default(own_pachd: PachdProcess) -> None:
    script = f"(echo > /dev/tcp/127.0.0.1/{own_pachd.port}) 2>/dev/null; echo $? > /pfs/out/tcp_rc"
    with Client(own_pachd.address) as client:
        outcome = _run(client, "online", "bash -c '" + script + "'")
    assert outcome["tcp_rc"] == "0"


def test_jobs_fail_with_the_reason_where_pods_cannot_be_confined(tmp_path: Path) -> None:
    server = PachdProcess(tmp_path / "data", env={"PATH": ""}).start()  # no bwrap to be found
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            client.create_pipeline(pipeline("never", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
            with client.commit("data") as c:
                client.put_file(("data", c.id), "f", b"x\n")
            job = only_job(client, "never", timeout=TIMEOUT)
            assert job.state == pps_pb2.JOB_FAILURE
            assert b"pachd | job failed" in b"".join(client.get_logs(job.job.id))
    finally:
        server.stop()
