"""Fixtures of the FUSE suite: a real `pachctl mount` of the shared pachd."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.mounts import Mount
from tests.support.pachd import PachdProcess


@pytest.fixture
def mounted(pachd: PachdProcess, client: Client, tmp_path: Path) -> Iterator[Path]:
    """The mount point of `pachctl mount` (every repo and commit) for this test."""
    mount = Mount(pachd.address, tmp_path / "pfs")
    yield mount.mountpoint
    mount.unmount()
