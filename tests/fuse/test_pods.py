"""Pods in FUSE mode: /pfs is mounted, not copied; results are the same as copying."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachctl.manifest import read_pipeline_requests
from tests.pps.test_tutorial import EXAMPLE, sums
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

TIMEOUT = 90


def fruit_stand(client: Client, env: dict[str, str]) -> list[dict[str, int]]:
    client.create_repo("data")
    for request in read_pipeline_requests((EXAMPLE / "pipeline.json").read_text()):
        request.transform.env.update(env)
        client.create_pipeline(request)
    totals = []
    for name in ("set1.txt", "set2.txt"):
        with client.commit("data") as c:
            client.put_file(("data", c.id), "sales", (EXAMPLE / name).read_bytes())
        flushed = client.flush_commit([("data", c.id)], timeout=TIMEOUT)
        totals.append(sums(client, next(i for i in flushed if i.commit.repo.name == "sum").commit.id))
    return totals


def test_fruit_stand_gives_the_same_results_in_both_modes(client: Client) -> None:
    copied = fruit_stand(client, {})
    client.delete_all()
    mounted = fruit_stand(client, {"PACH_PFS_MODE": "fuse"})
    assert copied == mounted == [{"apple": 133, "orange": 205, "banana": 165},
                                 {"apple": 324, "orange": 378, "banana": 301}]


@pytest.fixture
def fuse_pachd(tmp_path: Path) -> Iterator[PachdProcess]:
    server = PachdProcess(tmp_path / "data", extra_args=["--pod-pfs", "fuse"]).start()
    yield server
    server.stop()


def test_pachd_flag_mounts_every_pod(fuse_pachd: PachdProcess) -> None:
    with Client(fuse_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(f"f{i}", b"line\n" * 10) for i in range(8)])
        client.create_pipeline(pipeline("look", "stat -f -c %T /pfs/data >> /pfs/out/fs\ncat /pfs/data/* >> /pfs/out/all",
                                        [("data", MAP)], parallelism=2))
        out = client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1]
        assert set(client.get_file_bytes(("look", out.commit.id), "fs").split()) <= {b"fuse", b"fuseblk"}
        assert len(client.get_file_bytes(("look", out.commit.id), "all").splitlines()) == 80
