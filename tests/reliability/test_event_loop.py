"""The event loop never stalls: CPU-heavy and blocking work runs off it.

pachd runs with --slow-callback, which logs every callback that holds the
loop with the CPU time it spent there; a benchmark-sized workload (10,000
files in one stream, a pipeline job copying them all, a large JSON file, a
long line) must leave no callback over 250 ms of CPU. CPU time, not wall time, so a busy machine (which delays
the loop's thread without the code holding it) does not fail the test.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

MIB = 1 << 20
LIMIT = 0.25  # seconds of CPU one callback may hold the loop
_HELD = re.compile(r"held the event loop for ([0-9.]+) s \(([0-9.]+) s of CPU\)")


@pytest.fixture
def watched_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    server = PachdProcess(tmp_path / "data", extra_args=["--slow-callback", "0.1"]).start()
    yield server
    server.stop()


def _held(pachd: PachdProcess) -> list[tuple[float, float]]:
    """(wall, cpu) of every callback pachd logged as holding the loop."""
    return [(float(m.group(1)), float(m.group(2))) for m in _HELD.finditer(pachd.logs())]


def _long_line(mib: int) -> Iterator[bytes]:
    piece = b"y" * MIB
    for _ in range(mib):
        yield piece


def test_no_callback_holds_the_loop_through_a_benchmark_sized_workload(watched_pachd: PachdProcess) -> None:
    with Client(watched_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(f"d{i % 100}/f{i}", b"%04d\n" % i * 200) for i in range(10_000)])
        # A job over all of them: pods' downloads and uploads, the squash of their commits, the output's tree.
        client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)], parallelism=2))
        copied = next(i for i in client.flush_commit([("data", c.id)], timeout=900) if i.commit.repo.name == "copy")
        assert sum(1 for _ in client.walk_files(("copy", copied.commit.id))) == 10_000
        client.delete_pipeline("copy")
        value = json.dumps({"a": ["x" * 100] * 10, "b": {"c": "}{\\\"]"}}).encode()
        with client.commit("data") as c:
            client.put_file(("data", c.id), "values.json", (value * (MIB // len(value)) for _ in range(64)),
                            delimiter=pfs_pb2.JSON)
            client.put_file(("data", c.id), "line", _long_line(256))
        assert sum(1 for _ in client.walk_files(("data", "master"))) == 10_002
        assert len(client.list_file(("data", "master"), "d7")) == 100
    worst = max((cpu for _, cpu in _held(watched_pachd)), default=0.0)
    assert worst < LIMIT, f"a callback held pachd's event loop for {worst:.3f} s of CPU"


def test_list_repo_answers_within_a_second_during_a_huge_upload(watched_pachd: PachdProcess) -> None:
    latencies: list[float] = []
    errors: list[BaseException] = []
    with Client(watched_pachd.address) as client:
        client.create_repo("big")
        commit = client.start_commit("big")

        def upload() -> None:
            try:
                with Client(watched_pachd.address) as own:
                    own.put_file(("big", commit.id), "line", _long_line(768))
            except BaseException as err:  # noqa: BLE001 - reported below
                errors.append(err)

        thread = threading.Thread(target=upload)
        thread.start()
        while thread.is_alive():
            start = time.perf_counter()
            assert [r.repo.name for r in client.list_repo()] == ["big"]
            latencies.append(time.perf_counter() - start)
            thread.join(timeout=0.05)
        assert errors == []
        client.finish_commit(("big", commit.id))
        assert client.inspect_file(("big", commit.id), "line").size_bytes == 768 * MIB
    assert len(latencies) > 10
    assert max(latencies) < 1.0, f"list-repo took up to {max(latencies):.2f} s during the upload"
