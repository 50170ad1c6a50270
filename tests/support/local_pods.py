"""What the fake Kubernetes API server and the fake Docker engine share: an
HTTP server on loopback, and a pod's command run as a local process in its
own mount namespace (tests/support/fake_kubernetes.py, fake_docker.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pachd.executor.namespace import pod_argv


def serve_http(port: int, handler: type[BaseHTTPRequestHandler], name: str) -> ThreadingHTTPServer:
    """Serves `handler` on 127.0.0.1:`port` from a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


def stop_http(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def local_argv(argv: Sequence[str], pfs_dir: Path, binds: Mapping[Path, Path] | None = None) -> list[str]:
    """The pod's command as a local process: in a private mount namespace with
    `pfs_dir` at /pfs; the image's `job-shim` is this virtualenv's."""
    command = list(argv)
    if command and command[0] == "job-shim":
        command[0] = str(Path(sys.executable).with_name("job-shim"))
    return pod_argv(command, pfs_dir, binds)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL to the process and everything it started (it leads its own session)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
