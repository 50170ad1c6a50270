"""pachctl's PPS commands against a real pachd: manifests from files, stdin and URLs; jobs; logs."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.proto import pps_pb2
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

TIMEOUT = 90


def manifest(name: str, script: str, inputs: list[str], **extra: object) -> str:
    return json.dumps({"pipeline": {"name": name}, "transform": {"cmd": ["sh"], "stdin": script.splitlines()},
                       "inputs": [{"repo": {"name": repo}, "method": "map"} for repo in inputs], **extra})


@pytest.fixture
def run(pachd: PachdProcess, client: Client):  # type: ignore[no-untyped-def]
    return lambda *args, stdin="": pachctl(pachd.address, *args, stdin=stdin)


@pytest.fixture
def served() -> Iterator[dict[str, bytes]]:
    """A web server whose pages are what the test puts in the dict."""
    pages: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pages["__base__"] = f"http://127.0.0.1:{server.server_address[1]}".encode()
    yield pages
    server.shutdown()


def test_pipeline_commands(run, client: Client, tmp_path: Path, served: dict[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    spec = tmp_path / "copy.json"
    spec.write_text(manifest("copy", "echo copying\ncp /pfs/data/f /pfs/out/f", ["data"]))
    assert run("create-pipeline", "-f", str(spec)).code == 0
    assert run("create-pipeline", stdin=manifest("upper", "tr a-z A-Z < /pfs/copy/f > /pfs/out/f", ["copy"])).code == 0
    served["/count.json"] = manifest("count", "wc -c < /pfs/data/f > /pfs/out/n", ["data"]).encode()
    url = served["__base__"].decode() + "/count.json"
    assert run("create-pipeline", "-f", url).code == 0
    listed = run("list-pipeline").out.splitlines()
    assert listed[0].split() == ["NAME", "INPUT", "OUTPUT", "STATE"]
    assert [line.split()[:3] for line in listed[1:]] == [["copy", "data", "copy"], ["count", "data", "count"],
                                                         ["upper", "copy", "upper"]]
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"abc\n")
    flushed = client.flush_commit([("data", c.id)], timeout=TIMEOUT)
    upper = next(i for i in flushed if i.commit.repo.name == "upper")
    assert client.get_file_bytes(("upper", upper.commit.id), "f") == b"ABC\n"
    jobs = run("list-job", "-p", "copy").out.splitlines()
    assert jobs[0].split() == ["ID", "OUTPUT", "STARTED", "DURATION", "STATE"] and "success" in jobs[1]
    job_id = jobs[1].split()[0]
    assert run("list-job", "data/master/0").out.count("success") == 2
    inspected = run("inspect-job", job_id, "-b").out
    assert f"ID: {job_id}" in inspected and "State: success" in inspected and "\"cmd\": [\n    \"sh\"" in inspected
    assert run("get-logs", job_id).out == "0 | copying\n"
    described = run("inspect-pipeline", "copy").out
    assert "Name: copy" in described and "State: running" in described and "BLOCK" in described
    assert run("stop-pipeline", "copy").code == 0
    assert "State: stopped" in run("inspect-pipeline", "copy").out
    assert run("start-pipeline", "copy").code == 0
    assert run("update-pipeline", "--archive=false",
               stdin=manifest("copy", "cp /pfs/data/f /pfs/out/g", ["data"])).code == 0
    assert run("delete-pipeline", "upper").code == 0
    assert [line.split()[0] for line in run("list-pipeline").out.splitlines()[1:]] == ["copy", "count"]


def test_bad_manifests_are_reported(run, client: Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broken = run("create-pipeline", stdin='{"pipeline": {"name": "p"},\n "transform": {"cmd": ["sh"]}\n')
    assert broken.code == 1 and "line 3, column 1" in broken.err
    unknown = run("create-pipeline", stdin='{"pipeline": {"name": "p"}, "transfrom": {}}')
    assert unknown.code == 1 and "transfrom" in unknown.err
    assert run("create-pipeline", "-f", str(tmp_path / "missing.json")).code == 1
    assert run("create-pipeline", stdin=manifest("p", "true", ["nope"])).code == 1
    assert client.list_pipeline() == []


def test_jobs_by_hand(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x\n")
    job_spec = json.dumps({"transform": {"cmd": ["sh"], "stdin": ["cp /pfs/data/f /pfs/out/copy"]},
                           "inputs": [{"commit": {"repo": {"name": "data"}, "id": "master/0"}}]})
    created = run("create-job", stdin=job_spec)
    assert created.code == 0
    job_id = created.out.strip()
    info = client.inspect_job(job_id, block_state=True, timeout=TIMEOUT)
    assert info.state == pps_pb2.JOB_SUCCESS
    assert client.get_file_bytes((info.output_commit.repo.name, info.output_commit.id), "copy") == b"x\n"
    assert run("create-pipeline", stdin=manifest("gen", "date > /pfs/out/when", [])).code == 0
    ran = run("run-pipeline", "gen")
    assert ran.code == 0
    wait_until(lambda: client.inspect_job(ran.out.strip()).state == pps_pb2.JOB_SUCCESS, timeout=TIMEOUT,
               what="the run-pipeline job")
