"""--raw and -o json|yaml on list and inspect commands: the messages themselves."""

from __future__ import annotations

import json

import pytest
import yaml

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess

LIST_AND_INSPECT = [
    ("list-repo",), ("inspect-repo", "data"), ("list-commit", "data"), ("inspect-commit", "data", "master/0"),
    ("list-file", "data", "master/0"), ("inspect-file", "data", "master/0", "f"), ("list-job",),
    ("list-pipeline",),
]


@pytest.fixture
def data(client: Client) -> Client:
    client.create_repo("data")
    client.create_repo("more")
    with client.commit("data") as commit:
        client.put_file(("data", commit.id), "f", b"x\n")
    return client


def test_raw_is_one_json_message_per_line(pachd: PachdProcess, data: Client) -> None:
    ran = pachctl(pachd.address, "list-repo", "--raw")
    assert ran.code == 0
    assert [json.loads(line)["repo"]["name"] for line in ran.out.splitlines()] == ["data", "more"]
    inspected = pachctl(pachd.address, "inspect-commit", "data", "master/0", "--raw").out.splitlines()
    assert len(inspected) == 1 and json.loads(inspected[0])["commit"]["id"] == "master/0"


def test_json_and_yaml(pachd: PachdProcess, data: Client) -> None:
    listed = json.loads(pachctl(pachd.address, "list-repo", "-o", "json").out)
    assert [r["repo"]["name"] for r in listed] == ["data", "more"]
    single = json.loads(pachctl(pachd.address, "inspect-file", "data", "master/0", "f", "-o", "json").out)
    assert single["file"]["path"].lstrip("/") == "f" and single["sizeBytes"] == "2"
    assert [r["repo"]["name"] for r in yaml.safe_load(pachctl(pachd.address, "list-repo", "-o", "yaml").out)] == [
        "data", "more"]


@pytest.mark.parametrize("command", LIST_AND_INSPECT, ids=lambda c: c[0])
def test_every_list_and_inspect_command_takes_both(pachd: PachdProcess, data: Client, command: tuple[str, ...]) -> None:
    for flags in (["--raw"], ["-o", "json"], ["-o", "yaml"]):
        ran = pachctl(pachd.address, *command, *flags)
        assert ran.code == 0, ran.err
        for line in ran.out.splitlines() if flags == ["--raw"] else []:
            json.loads(line)
