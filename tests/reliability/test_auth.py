"""Who may call pachd: pods only for their own job; with --auth-token-file, only holders of the token."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from unittest import mock

import grpc
import pytest

from pachyderm_client import Client, PachydermError
from pachd import config as pachd_config
from pachyderm_client.proto import pps_internal_pb2, pps_internal_pb2_grpc, pps_pb2
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline
from tests.support.ports import free_port

TIMEOUT = 120


def _internal(address: str, token: str | None) -> pps_internal_pb2_grpc.InternalJobAPIStub:
    return pps_internal_pb2_grpc.InternalJobAPIStub(grpc.insecure_channel(address))


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _job_token(client: Client) -> tuple[str, str, str]:
    """(a job, its pod's credential, another job of the same pipeline)."""
    client.create_repo("data")
    client.create_pipeline(pipeline("tell", "echo $PACH_JOB_TOKEN > /pfs/out/token", [("data", MAP)]))
    outs = []
    for n in range(2):
        with client.commit("data") as c:
            client.put_file(("data", c.id), f"f{n}", b"x\n")
        outs.append(client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1])
    token = client.get_file_bytes(("tell", outs[0].commit.id), "token").decode().strip()
    jobs = client.list_job("tell")
    told = next(j.job.id for j in jobs if j.output_commit.id == outs[0].commit.id)  # the job that wrote the token
    return told, token, next(j.job.id for j in jobs if j.job.id != told)


def test_a_forged_finish_job_for_another_job_is_refused(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        job, token, other = _job_token(client)
        stub = _internal(own_pachd.address, None)
        as_pod = (("authorization", f"Bearer {token}"),)
        finish = pps_internal_pb2.FinishJobRequest(job=pps_pb2.Job(id=other), success=True, pod_index=0)
        assert _code(lambda: stub.FinishJob(finish, metadata=as_pod, timeout=30)) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: stub.StartJob(pps_internal_pb2.StartJobRequest(job=pps_pb2.Job(id=other)),
                                           metadata=as_pod, timeout=30)) == grpc.StatusCode.PERMISSION_DENIED
        forged = (("authorization", f"Bearer {other}.{'0' * 64}"),)
        assert _code(lambda: stub.FinishJob(finish, metadata=forged, timeout=30)) == grpc.StatusCode.PERMISSION_DENIED
        assert _code(lambda: stub.FinishJob(finish, timeout=30)) == grpc.StatusCode.UNAUTHENTICATED
        assert client.inspect_job(other).state == pps_pb2.JOB_SUCCESS  # untouched
        assert token.startswith(job)


def test_a_job_credential_opens_only_its_own_jobs_repos_and_commits(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        _, token, _ = _job_token(client)  # job of pipeline "tell": reads "data", writes "tell"
        client.create_repo("secret")
        with client.commit("secret") as hidden:
            client.put_file(("secret", hidden.id), "f", b"hidden\n")
        other = client.start_commit("secret")
        own_repo = client.start_commit("tell")  # its output repo, but no pod's commit
        data = client.list_commit(["data"])[0].commit.id
        with Client(own_pachd.address, auth_token=token) as pod:
            assert pod.get_file_bytes(("data", data), "f0") == b"x\n"  # its input: open
            assert pod.inspect_repo("tell").repo.name == "tell"
            refusals = {
                "get-file": lambda: pod.get_file_bytes(("secret", hidden.id), "f"),
                "list-file": lambda: pod.list_file(("secret", hidden.id), "/"),
                "inspect-repo": lambda: pod.inspect_repo("secret"),
                "list-commit of every repo": lambda: pod.list_commit([]),
                "delete-repo": lambda: pod.delete_repo("secret", force=True),
                "put-file elsewhere": lambda: pod.put_file(("secret", other.id), "g", b"planted\n"),
                "put-file in its repo": lambda: pod.put_file(("tell", own_repo.id), "g", b"planted\n"),
                "delete-file": lambda: pod.delete_file(("secret", other.id), "f"),
                "finish-commit": lambda: pod.finish_commit(("secret", other.id)),
                "delete-all": lambda: pod.delete_all(),
                "list-job": lambda: pod.list_job(),
            }
            for name, call in refusals.items():
                with pytest.raises(PachydermError) as refused:
                    call()
                assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED, name
        assert client.get_file_bytes(("secret", hidden.id), "f") == b"hidden\n"  # nothing lost
        assert [f.file.path for f in client.list_file(("tell", own_repo.id), "/")] == []
        assert not client.inspect_commit(("secret", other.id)).HasField("finished")  # still open


def test_anonymous_pods_when_allowed(tmp_path: Path) -> None:
    server = PachdProcess(tmp_path / "data", extra_args=["--allow-anonymous-pods"]).start()
    try:
        stub = _internal(server.address, None)
        start = pps_internal_pb2.StartJobRequest(job=pps_pb2.Job(id="no-such-job"))
        assert _code(lambda: stub.StartJob(start, timeout=30)) == grpc.StatusCode.NOT_FOUND  # let through
    finally:
        server.stop()


@pytest.fixture
def token_pachd(tmp_path: Path) -> PachdProcess:
    token_file = tmp_path / "token"
    token_file.write_text("admin-secret-token\n")
    token_file.chmod(0o600)
    return PachdProcess(tmp_path / "data", extra_args=["--auth-token-file", str(token_file)])


def test_an_auth_token_is_required_when_configured(token_pachd: PachdProcess) -> None:
    token_pachd.start()
    try:
        with Client(token_pachd.address, auth_token="") as anonymous:
            anonymous.health(timeout=10)  # health and version stay open
            anonymous.get_version()
            with pytest.raises(PachydermError) as missing:
                anonymous.list_repo()
            assert missing.value.code == grpc.StatusCode.UNAUTHENTICATED
        with Client(token_pachd.address, auth_token="wrong") as wrong, pytest.raises(PachydermError) as refused:
            wrong.list_repo()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
        with Client(token_pachd.address, auth_token="admin-secret-token") as client:
            client.create_repo("data")
            client.create_pipeline(pipeline("copy", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
            with client.commit("data") as c:
                client.put_file(("data", c.id), "f", b"x\n")
            out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1]  # pods ran on their job credentials
            assert client.get_file_bytes(("copy", out.commit.id), "f") == b"x\n"
        with mock.patch.dict(os.environ, {"PACH_AUTH_TOKEN": "admin-secret-token"}):
            assert pachctl(token_pachd.address, "list-repo").code == 0
        assert pachctl(token_pachd.address, "list-repo").code != 0
    finally:
        token_pachd.stop()


def test_no_token_is_needed_by_default(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address, auth_token="") as client:
        client.create_repo("open")


def test_pachd_listens_on_loopback_by_default(tmp_path: Path) -> None:
    assert pachd_config.load([], env={}).host == "127.0.0.1"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORT", "PACH", "ETCD", "STORAGE"))}
    process = subprocess.Popen([sys.executable, "-m", "pachd.main", "--port", str(port), "--data-dir",
                                str(tmp_path / "data")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(f"127.0.0.1:{port}") as client:
            client.health(timeout=30)
        with Client(f"0.0.0.0:{port}") as client:  # pachctl's default address, as in v1.2
            client.health(timeout=10)
        outside = _non_loopback_address()
        if outside is not None:
            with socket.socket() as probe:
                assert probe.connect_ex((outside, port)) != 0  # nothing answers beyond loopback
    finally:
        process.terminate()
        process.wait(timeout=30)


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            udp.connect(("192.0.2.1", 9))  # no packet is sent; the kernel picks the outgoing address
        except OSError:
            return None
        address = str(udp.getsockname()[0])
    return None if address.startswith("127.") else address
