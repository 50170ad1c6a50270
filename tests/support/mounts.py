"""`pachctl mount` as a real process, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.wait import wait_until


def is_mounted(path: Path) -> bool:
    with open("/proc/mounts") as table:
        return any(line.split()[1] == str(path) for line in table)


class Mount:
    def __init__(self, address: str, mountpoint: Path, *args: str) -> None:
        mountpoint.mkdir(parents=True, exist_ok=True)
        self.mountpoint = mountpoint
        self.log = mountpoint.parent / f"{mountpoint.name}-mount.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "pachctl.main", "mount", str(mountpoint), *args],
                env={**os.environ, "ADDRESS": address}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_until(lambda: is_mounted(mountpoint) or self.process.poll() is not None, what="the mount")
        if self.process.poll() is not None:
            raise RuntimeError(f"pachctl mount exited: {self.log.read_text()}")

    def unmount(self) -> None:
        if is_mounted(self.mountpoint):
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def sh(command: str, cwd: Path | None = None) -> str:
    """Runs a shell command (through the mount, usually); its stdout. Fails on a non-zero exit."""
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True, cwd=cwd).stdout
