"""`pachctl mount` says when the filesystem is ready (real FUSE)."""

from __future__ import annotations

from pathlib import Path

from pachyderm_client import Client
from tests.support.mounts import Mount, is_mounted
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

READY = "Filesystem mounted, CTRL-C to exit."


def test_mount_says_when_it_is_ready(pachd: PachdProcess, client: Client, tmp_path: Path) -> None:
    mount = Mount(pachd.address, tmp_path / "pfs")
    try:
        wait_until(lambda: READY in mount.log.read_text(), what="the ready line")
        assert is_mounted(mount.mountpoint)
        assert mount.log.read_text().count(READY) == 1
    finally:
        mount.unmount()
