"""Transport security and secrets: TLS when configured; secret values never shown."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

from pachyderm_client import Client, UnavailableError
from pachyderm_client.proto import pps_pb2
from tests.support.certs import self_signed
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

TIMEOUT = 90


@pytest.fixture
def tls_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    server = PachdProcess(tmp_path / "data", tls=self_signed(tmp_path)).start()
    yield server
    server.stop()


def test_tls_clients_pachctl_and_pods(tls_pachd: PachdProcess) -> None:
    assert tls_pachd.tls is not None
    ca = tls_pachd.tls[0].read_bytes()
    with Client(tls_pachd.address, tls_ca=ca) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", b"over tls\n")
        client.create_pipeline(pipeline("copy", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
        out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1]  # the pod connected with TLS too
        assert client.get_file_bytes(("copy", out.commit.id), "f") == b"over tls\n"
    with mock.patch.dict(os.environ, {"PACHD_TLS_CA": str(tls_pachd.tls[0])}):
        listed = pachctl(tls_pachd.address, "list-repo")
    assert listed.code == 0 and "copy" in listed.out
    with Client(tls_pachd.address) as plain, pytest.raises(UnavailableError):
        plain.list_repo()  # plaintext to a TLS server


def test_plaintext_is_the_default(client: Client) -> None:
    client.health(timeout=5)


def test_secret_env_values_are_not_shown(client: Client) -> None:
    client.create_repo("data")
    request = pipeline("leaky", 'echo "token is $API_TOKEN"\necho "user is $USER_NAME"\ncp /pfs/data/f /pfs/out/f',
                       [("data", MAP)], env={"API_TOKEN": "s3cr3t-value", "USER_NAME": "alice"})
    client.create_pipeline(request)
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x\n")
    out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1]
    assert client.get_file_bytes(("leaky", out.commit.id), "f") == b"x\n"  # the pod had the real value
    job = client.list_job("leaky")[0]
    logs = b"".join(client.get_logs(job.job.id))
    assert b"s3cr3t-value" not in logs and b"user is alice" in logs
    assert client.inspect_job(job.job.id).transform.env["API_TOKEN"] != "s3cr3t-value"
    assert client.inspect_pipeline("leaky").transform.env["USER_NAME"] == "alice"
    assert client.inspect_pipeline("leaky").transform.env["API_TOKEN"] != "s3cr3t-value"
    assert pps_pb2.JOB_SUCCESS == client.inspect_job(job.job.id).state
