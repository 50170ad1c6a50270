"""A full disk: the data dir on a small filesystem (a tmpfs this test mounts).

A put that does not fit fails with RESOURCE_EXHAUSTED naming the data dir,
and so does every later one while the disk stays full; metadata calls keep
working (block writes leave room for them), so the half-written commit can be
cancelled; once space is freed pachd carries on without a restart.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachyderm_client.errors import ResourceExhaustedError
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess

MIB = 1 << 20
DISK = 96 * MIB
BALLAST = 40 * MIB


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _data(n: int) -> bytes:
    return (b"%07d " % n) * (MIB // 8)  # 1 MiB of lines, distinct per n


def test_a_full_disk_is_reported_and_survived(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * BALLAST)
    pachd = PachdProcess(small_disk / "data").start()
    try:
        with Client(pachd.address) as client:
            client.create_repo("data")
            with client.commit("data") as c:
                client.put_file(("data", c.id), "before", _data(0))
            commit = client.start_commit("data")
            with pytest.raises(ResourceExhaustedError) as refused:
                for n in range(1, DISK // MIB):
                    client.put_file(("data", commit.id), f"filler{n}", b"".join(_data(n * 100 + i) for i in range(8)))
            assert str(small_disk / "data") in refused.value.message  # it names where the disk is full
            with pytest.raises(ResourceExhaustedError):
                client.put_file(("data", commit.id), "again", b"".join(_data(9000 + i) for i in range(16)))
            assert [r.repo.name for r in client.list_repo()] == ["data"]  # metadata still answers
            client.cancel_commit(("data", commit.id))  # while the disk is still full
            assert client.inspect_commit(("data", commit.id)).cancelled

            ballast.unlink()  # space comes back: no restart needed
            with client.commit("data") as c:
                client.put_file(("data", c.id), "after", b"".join(_data(7000 + i) for i in range(16)))
            assert client.get_file_bytes(("data", c.id), "after") == b"".join(_data(7000 + i) for i in range(16))
            assert client.get_file_bytes(("data", c.id), "before") == _data(0)
    finally:
        pachd.stop()


def test_finishing_a_child_of_a_cancelled_commit_says_so(client: Client) -> None:
    client.create_repo("data")
    parent = client.start_commit("data")
    child = client.start_commit("data", parent.id)
    client.cancel_commit(("data", parent.id))
    finished = pachctl(client.address, "finish-commit", "data", child.id)
    assert finished.code == 1 and "cancelled" in finished.err
    assert client.inspect_commit(("data", child.id)).cancelled
    plain = client.start_commit("data", "other")
    assert pachctl(client.address, "finish-commit", "data", plain.id).code == 0
