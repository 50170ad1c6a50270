"""pachctl under a real pseudo-terminal: progress bars go to a terminal stderr only, never into stdout.

Each command that can show a bar runs as its own process with stderr on a pty
and stdout a file, and again with stdout on a second pty; stdout's bytes are
compared exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import tty
from dataclasses import dataclass
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.pachd import PachdProcess

DATA = os.urandom(3 * 1024 * 1024) + b"last line, no newline"
TIMEOUT = 120.0


class _Pty:
    """A pseudo-terminal in raw mode (no \\n -> \\r\\n), its output drained by a thread."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.received = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every slave end is closed
                return
            if not chunk:
                return
            self.received += chunk

    def close_slave(self) -> None:
        os.close(self.slave)

    def finish(self) -> bytes:
        self._reader.join(timeout=TIMEOUT)
        os.close(self.master)
        return bytes(self.received)


@dataclass(frozen=True)
class Ran:
    code: int
    stdout: bytes
    stderr: bytes


def _run(address: str, args: list[str], tmp_path: Path, *, stdout_on_pty: bool) -> Ran:
    err_pty = _Pty()
    out_pty = _Pty() if stdout_on_pty else None
    out_path = tmp_path / "stdout"
    env = {**os.environ, "ADDRESS": address, "TERM": "xterm", "COLUMNS": "100"}
    with open(out_path, "wb") as out_file:
        process = subprocess.Popen([sys.executable, "-m", "pachctl.main", *args], env=env,
                                   stdin=subprocess.DEVNULL, stderr=err_pty.slave,
                                   stdout=out_pty.slave if out_pty else out_file)
        err_pty.close_slave()
        if out_pty:
            out_pty.close_slave()
        code = process.wait(timeout=TIMEOUT)
    stderr = err_pty.finish()
    stdout = out_pty.finish() if out_pty else out_path.read_bytes()
    return Ran(code, stdout, stderr)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "big"
    path.write_bytes(DATA)
    return path


@pytest.mark.parametrize("stdout_on_pty", [False, True], ids=["stdout-file", "stdout-pty"])
def test_get_file_writes_exactly_the_file(pachd: PachdProcess, client: Client, tmp_path: Path,
                                          stdout_on_pty: bool) -> None:
    client.create_repo("tty_get")
    with client.commit("tty_get") as commit:
        client.put_file(("tty_get", commit.id), "big", DATA)
    ran = _run(pachd.address, ["get-file", "tty_get", commit.id, "big"], tmp_path, stdout_on_pty=stdout_on_pty)
    assert ran.code == 0, ran.stderr
    assert len(ran.stdout) == len(DATA) and ran.stdout == DATA


@pytest.mark.parametrize("stdout_on_pty", [False, True], ids=["stdout-file", "stdout-pty"])
def test_put_file_writes_nothing_to_stdout(pachd: PachdProcess, client: Client, tmp_path: Path, source: Path,
                                           stdout_on_pty: bool) -> None:
    client.create_repo("tty_put")
    commit = client.start_commit("tty_put")
    ran = _run(pachd.address, ["put-file", "tty_put", commit.id, "big", "-f", str(source)], tmp_path,
               stdout_on_pty=stdout_on_pty)
    assert ran.code == 0, ran.stderr
    assert ran.stdout == b""
    client.finish_commit(("tty_put", commit.id))
    assert client.get_file_bytes(("tty_put", commit.id), "big") == DATA


def test_quiet_draws_nothing(pachd: PachdProcess, client: Client, tmp_path: Path) -> None:
    client.create_repo("tty_quiet")
    with client.commit("tty_quiet") as commit:
        client.put_file(("tty_quiet", commit.id), "big", DATA)
    ran = _run(pachd.address, ["-q", "get-file", "tty_quiet", commit.id, "big"], tmp_path, stdout_on_pty=False)
    assert ran.code == 0 and ran.stdout == DATA and ran.stderr == b""
