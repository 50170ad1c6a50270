"""Finding things: job ID prefixes, commit IDs as list-commit prints them, and flush-commit's next step."""

from __future__ import annotations

import json

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess


def test_a_unique_job_id_prefix_is_accepted(pachd: PachdProcess, client: Client) -> None:
    created = pachctl(pachd.address, "create-job", stdin=json.dumps({"transform": {"cmd": ["true"]}}))
    job = created.out.strip()
    assert created.code == 0 and job
    inspected = pachctl(pachd.address, "inspect-job", "-b", job[:8])
    assert inspected.code == 0 and inspected.out.startswith(f"ID: {job} ")
    assert pachctl(pachd.address, "get-logs", job[:8]).code == 0
    assert pachctl(pachd.address, "inspect-job", "nosuchjob").code == 1


def test_commit_ids_as_printed_are_accepted(pachd: PachdProcess, client: Client) -> None:
    client.create_repo("data")
    client.create_repo("out", ["data"])
    with client.commit("data") as commit:
        client.put_file(("data", commit.id), "f", b"hello\n")
    downstream = client.start_commit("out", provenance=[("data", commit.id)])
    client.put_file(("out", downstream.id), "result", b"done\n")
    client.finish_commit(("out", downstream.id))
    flushed = pachctl(pachd.address, "flush-commit", f"data/{commit.id}")
    assert flushed.code == 0
    assert flushed.err.splitlines() == [f"read an output with: pachctl get-file out {downstream.id} <path>"]
    assert f"out/{downstream.id}" in flushed.out
    got = pachctl(pachd.address, "get-file", "out", f"out/{downstream.id}", "result")  # pasted from the table
    assert got.code == 0 and got.out == "done\n"
    assert pachctl(pachd.address, "inspect-commit", "data", f"data/{commit.id}").code == 0
