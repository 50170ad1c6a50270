"""Starting a test server process (emulators, moto) and waiting until it answers."""

from __future__ import annotations

import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.support.wait import wait_until


def start_server(args: Sequence[str], log_path: Path, *, ready: Callable[[], bool], what: str,
                 timeout: float = 30.0) -> subprocess.Popen[bytes]:
    """Runs `args` in a session of its own, its output appended to `log_path`, until `ready()`
    (RuntimeError naming the log if it exits first, AssertionError if it takes too long)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(list(args), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def answering() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited; see {log_path}")
        return ready()

    wait_until(answering, timeout=timeout, what=f"{what} to start (see {log_path})")
    return process


def answers(url: str) -> Callable[[], bool]:
    """A `ready` test: an HTTP GET of `url` gets any answer."""
    def check() -> bool:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    return check


def listens(port: int) -> Callable[[], bool]:
    """A `ready` test: 127.0.0.1:`port` accepts connections."""
    def check() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    return check
