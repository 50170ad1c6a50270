"""One pachd, one place: a second pachd on a busy port or on a data dir in use refuses to start.

Before, gRPC's SO_REUSEPORT let two pachds bind one port, and requests
alternated between two data stores: it looked like data loss.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port

START_TIMEOUT = 60.0


def _second_pachd(*, port: int, data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Runs another pachd to its end (it must end by itself: a refusal)."""
    args = [sys.executable, "-m", "pachd.main", "--port", str(port), "--host", "127.0.0.1",
            "--data-dir", str(data_dir), "--http-port", "0"]
    return subprocess.run(args, capture_output=True, text=True, timeout=START_TIMEOUT)


def test_a_second_pachd_on_a_busy_port_refuses_to_start(own_pachd: PachdProcess, tmp_path: Path) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("first")
    second = _second_pachd(port=own_pachd.port, data_dir=tmp_path / "other")
    assert second.returncode != 0
    assert f"127.0.0.1:{own_pachd.port}" in second.stderr  # it says which address was busy
    # Every request still reaches the first pachd and its data.
    with Client(own_pachd.address) as client:
        for _ in range(20):
            assert [r.repo.name for r in client.list_repo()] == ["first"]


def test_a_second_pachd_on_a_data_dir_in_use_refuses_to_start(own_pachd: PachdProcess) -> None:
    second = _second_pachd(port=free_port(), data_dir=own_pachd.data_dir)
    assert second.returncode != 0
    assert str(own_pachd.data_dir) in second.stderr
    with Client(own_pachd.address) as client:
        client.create_repo("still_served")


def test_the_data_dir_is_free_again_after_a_crash(own_pachd: PachdProcess) -> None:
    """The lock dies with its process: kill -9 leaves nothing stale behind."""
    with Client(own_pachd.address) as client:
        client.create_repo("kept")
    own_pachd.kill()
    own_pachd.start()
    with Client(own_pachd.address) as client:
        assert [r.repo.name for r in client.list_repo()] == ["kept"]
