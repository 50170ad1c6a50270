"""get-logs (--follow, --pipeline, a job that printed nothing) and failure reasons in
inspect-job and list-job, against a real pachd whose local pods run the pipelines."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from google.protobuf import json_format

from pachyderm_client import Client
from pachyderm_client.pps import method
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.beacon import Beacon
from tests.support.cli import Result, pachctl
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

TIMEOUT = 120


def pipeline(client: Client, name: str, script: str, inputs: tuple[str, ...] = ("data",)) -> None:
    request = pps_pb2.CreatePipelineRequest(
        pipeline=pps_pb2.Pipeline(name=name), transform=pps_pb2.Transform(cmd=["sh"], stdin=script.splitlines()),
        inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=r), method=method("map")) for r in inputs])
    client.create_pipeline(request)


def commit_data(client: Client, content: bytes = b"x\n") -> None:
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", content)


def ended_job(client: Client, name: str, count: int = 1) -> list[pps_pb2.JobInfo]:
    """The pipeline's jobs, oldest first, once `count` of them have ended."""
    def ended() -> list[pps_pb2.JobInfo] | None:
        infos = client.list_job(name)
        done = [i for i in infos if i.state in (pps_pb2.JOB_SUCCESS, pps_pb2.JOB_FAILURE, pps_pb2.JOB_EMPTY)]
        return sorted(done, key=lambda i: (i.started.seconds, i.started.nanos)) if len(done) >= count else None

    wait_until(ended, timeout=TIMEOUT, what=f"{count} job(s) of {name} to end")
    return ended() or []


@pytest.fixture
def run(pachd: PachdProcess, client: Client):  # type: ignore[no-untyped-def]
    def call(*args: str) -> Result:
        return pachctl(pachd.address, *args)
    return call


class Streamed:
    """`pachctl args...` as its own process, its stdout read line by line as it comes."""

    def __init__(self, address: str, *args: str) -> None:
        env = {**os.environ, "ADDRESS": address}
        self.process = subprocess.Popen([sys.executable, "-m", "pachctl.main", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.seen: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_line(self, wanted: bytes) -> None:
        def arrived() -> bool:
            while not self.lines.empty():
                self.seen.append(self.lines.get())
            return wanted in self.seen
        wait_until(arrived, timeout=TIMEOUT, what=f"pachctl to print {wanted!r}")

    def finish(self) -> tuple[int, list[bytes], bytes]:
        code = self.process.wait(timeout=TIMEOUT)
        assert self.process.stderr is not None
        err = self.process.stderr.read()
        self._reader.join(timeout=TIMEOUT)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code, self.seen, err


@pytest.fixture
def beacon() -> Iterator[Beacon]:
    with Beacon() as opened:
        yield opened


def test_a_failed_jobs_reason_is_shown_by_inspect_job_and_list_job(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    pipeline(client, "fails", "echo starting\necho boom >&2\nexit 3")
    pipeline(client, "works", "cp /pfs/data/f /pfs/out/f")
    commit_data(client)
    failed = ended_job(client, "fails")[0]
    assert failed.state == pps_pb2.JOB_FAILURE
    worked = ended_job(client, "works")[0]

    [failure] = client.get_failures([failed.job.id, worked.job.id])
    assert failure.job.id == failed.job.id
    assert failure.pod_index == 0 and failure.pod_name and failure.exit_code == 3
    assert list(failure.last_lines) == [b"starting", b"boom"]

    inspected = run("inspect-job", failed.job.id)
    assert inspected.code == 0
    v12, _, ours = inspected.out.partition("Failure: ")
    assert "State: failure" in v12 and v12.endswith("\n")
    assert ours.splitlines() == [failure.reason, f"Pod: 0 ({failure.pod_name})", "Exit Code: 3", "Last Lines:",
                                 "0 | starting", "0 | boom"]
    assert "Failure" not in run("inspect-job", worked.job.id).out
    raw = run("inspect-job", failed.job.id, "--raw")
    assert json.loads(raw.out) == json_format.MessageToDict(client.inspect_job(failed.job.id))  # v1.2's message alone
    assert json.loads(run("inspect-job", failed.job.id, "-o", "json").out)["state"] == "JOB_FAILURE"

    listed = run("list-job").out.splitlines()
    assert listed[0].split() == ["ID", "OUTPUT", "STARTED", "DURATION", "STATE"]
    assert len(listed) == 5 and listed[3] == ""  # the v1.2 table, a blank line, the reasons
    assert listed[4] == f'{failed.job.id}: {failure.reason} (last line: "boom")'
    assert len(run("list-job", "-p", "works").out.splitlines()) == 2  # no failures: v1.2's table alone
    raw_rows = [json.loads(line) for line in run("list-job", "--raw").out.splitlines()]
    assert sorted(raw_rows, key=lambda r: r["job"]["id"]) == sorted(
        (json_format.MessageToDict(i) for i in client.list_job()), key=lambda r: r["job"]["id"])
    assert "Failure" not in run("list-job", "-o", "json").out


def test_get_logs_of_a_job_that_printed_nothing_says_so_on_stderr(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    pipeline(client, "quiet", "cp /pfs/data/f /pfs/out/f")
    commit_data(client)
    job = ended_job(client, "quiet")[0].job.id
    logs = run("get-logs", job)
    assert logs.code == 0 and logs.out == "" and job in logs.err
    assert run("get-logs", "--pipeline", "quiet").out == ""


def follow_gated(pachd: PachdProcess, client: Client, beacon: Beacon, last: str, flag: str) -> tuple[str, Streamed]:
    """A job that prints a line, waits at the beacon's gate, then runs `last`; followed
    by `pachctl get-logs <flag> <job>` until that first line has arrived."""
    client.create_repo("data")
    pipeline(client, "gated", f"echo before\n{beacon.command('gate')}\n{last}")
    commit_data(client)
    wait_until(lambda: client.list_job("gated"), timeout=TIMEOUT, what="the job")
    job = client.list_job("gated")[0].job.id
    followed = Streamed(pachd.address, "get-logs", flag, job)
    followed.wait_line(b"0 | before\n")
    return job, followed


def test_get_logs_follow_streams_until_the_job_ends(pachd: PachdProcess, client: Client, beacon: Beacon) -> None:
    job, followed = follow_gated(pachd, client, beacon, "echo after", "-f")
    assert followed.process.poll() is None  # still following: the job waits at the gate
    assert client.inspect_job(job).state == pps_pb2.JOB_RUNNING
    beacon.open("gate")
    code, lines, _ = followed.finish()
    assert code == 0 and lines == [b"0 | before\n", b"0 | ok\n", b"0 | after\n"]


def test_get_logs_follow_exits_1_when_the_job_fails(pachd: PachdProcess, client: Client, beacon: Beacon) -> None:
    job, followed = follow_gated(pachd, client, beacon, "exit 7", "--follow")
    beacon.open("gate")
    code, lines, err = followed.finish()
    assert code == 1 and job.encode() in err
    assert lines[:2] == [b"0 | before\n", b"0 | ok\n"] and lines[-1].startswith(b"pachd | ")
    assert len(lines) == 3


def test_get_logs_of_a_pipeline_prefixes_each_line_with_its_job(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    pipeline(client, "echoes", "cat /pfs/data/f")
    commit_data(client, b"one\n")
    first = ended_job(client, "echoes")[0].job.id
    commit_data(client, b"two\n")
    jobs = [i.job.id for i in ended_job(client, "echoes", 2)]
    assert jobs[0] == first
    logs = run("get-logs", "--pipeline", "echoes")
    assert logs.code == 0
    assert logs.out.splitlines() == [f"{jobs[0]} | 0 | one", f"{jobs[1]} | 0 | two"]
    followed = run("get-logs", "--pipeline", "echoes", "-f")  # every job has ended: nothing to wait for
    assert followed.code == 0 and followed.out == logs.out
    assert run("get-logs").code != 0 and run("get-logs", first, "--pipeline", "echoes").code != 0
    assert run("get-logs", "--pipeline", "nope").code == 1
