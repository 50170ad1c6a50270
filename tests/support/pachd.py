"""A real pachd process for tests: started on a free loopback port, killable, restartable."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
from google.protobuf import empty_pb2

from pachyderm_client.proto import health_pb2_grpc
from tests.support import unprivileged
from tests.support.ports import free_port

START_TIMEOUT = 30.0


class PachdProcess:
    """`python -m pachd.main` with its own data dir (and etcd, if given)."""

    def __init__(self, data_dir: Path, *, etcd: str = "", extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None, tls: tuple[Path, Path] | None = None,
                 source: Path | None = None, python: Path | None = None,
                 user: tuple[int, int] | None = None) -> None:
        self.user = user  # (uid, gid): pachd runs as this unprivileged user (unprivileged.py), not as the tests' own
        self.source = source  # another checkout's pachd to run (benchmarks compare builds); None: this one
        self.python = python or Path(sys.executable)  # the Python it runs on (a build's own, see bench/common.py)
        self.data_dir = data_dir
        self.etcd = etcd
        self.tls = tls  # (certificate, key): serve TLS
        self.extra_args = extra_args or []
        self.env = env or {}
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-pachd.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> PachdProcess:
        args = [str(self.python), "-m", "pachd.main", "--port", str(self.port), "--host", "127.0.0.1",
                "--data-dir", str(self.data_dir), "--log-level", "DEBUG", *self.extra_args]
        if "--http-port" not in self.extra_args:
            args += ["--http-port", "0"]  # no console unless a test asks for one on its own port
        if self.etcd:
            args += ["--etcd", self.etcd]
        if self.tls:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PORT", "PACH", "ETCD", "STORAGE"))}
        env.update(self.env)
        if self.user is not None:
            env["HOME"] = str(self.data_dir)
            args = unprivileged.as_user(args, self.user, self.data_dir.parent / f"{self.data_dir.name}-views",
                                        [self.data_dir, Path(__file__).resolve().parents[2]])
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                        cwd=self.source)
        log.close()
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        if self.tls:
            credentials = grpc.ssl_channel_credentials(root_certificates=self.tls[0].read_bytes())
            channel = grpc.secure_channel(self.address, credentials)
        else:
            channel = grpc.insecure_channel(self.address)
        with channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"pachd exited with {self.process.returncode}; see {self.log_path}")
                try:
                    health.Health(empty_pb2.Empty(), timeout=1.0, wait_for_ready=True)
                    return
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"pachd did not become healthy; see {self.log_path}") from None

    def kill(self) -> None:
        """SIGKILL: the crash case."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> int:
        """SIGTERM, then wait: the clean shutdown case. Returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def restart(self) -> PachdProcess:
        self.stop()
        return self.start()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def pachd_as_nobody(*extra_args: str) -> Iterator[PachdProcess]:
    """A pachd run as an unprivileged user (nobody), with a data dir of that user's (the tests' must be root)."""
    base = Path(tempfile.mkdtemp(prefix="pachd-user-"))
    os.chown(base, *unprivileged.NOBODY)
    server = PachdProcess(base / "data", user=unprivileged.NOBODY, extra_args=list(extra_args))
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
