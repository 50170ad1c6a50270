"""The original beginner tutorial (fruit stand), as written, through pachctl."""

from __future__ import annotations

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.examples import example
from tests.support.pachd import PachdProcess

EXAMPLE = example("fruit_stand")


def sums(client: Client, commit_id: str) -> dict[str, int]:
    return {fruit: int(client.get_file_bytes(("sum", commit_id), fruit)) for fruit in ("apple", "orange", "banana")}


def test_fruit_stand(pachd: PachdProcess, client: Client) -> None:
    address = pachd.address
    assert pachctl(address, "create-repo", "data").code == 0
    put = pachctl(address, "put-file", "data", "master", "sales", "-c", "-f", str(EXAMPLE / "set1.txt"))
    assert put.code == 0, put.err
    created = pachctl(address, "create-pipeline", "-f", str(EXAMPLE / "pipeline.json"))
    assert created.code == 0, created.err
    flushed = pachctl(address, "flush-commit", "data/master/0")
    assert flushed.code == 0, flushed.err
    sum_commit = next(line.split()[1] for line in flushed.out.splitlines() if line.split()[1].startswith("sum/"))
    assert sums(client, sum_commit.split("/", 1)[1]) == {"apple": 133, "orange": 205, "banana": 165}

    put = pachctl(address, "put-file", "data", "master", "sales", "-c", "-f", str(EXAMPLE / "set2.txt"))
    assert put.code == 0, put.err
    flushed = pachctl(address, "flush-commit", "data/master/1")
    outputs = {line.split()[1].split("/", 1)[0]: line.split()[1].split("/", 1)[1]
               for line in flushed.out.splitlines()[1:]}
    assert sums(client, outputs["sum"]) == {"apple": 324, "orange": 378, "banana": 301}

    # The filter job of the second commit saw only the new lines: what it added
    # to filter/apple is exactly set2's apples, once.
    new_apples = [line.split()[1] for line in (EXAMPLE / "set2.txt").read_text().splitlines() if "apple" in line]
    first_filter = client.list_commit([("filter", "")])[0].commit.id
    added = client.get_file_bytes(("filter", outputs["filter"]), "apple", from_commit=first_filter)
    assert added.decode().split() == new_apples
    jobs = pachctl(address, "list-job", "-p", "filter")
    assert jobs.code == 0 and jobs.out.count("success") == 2
