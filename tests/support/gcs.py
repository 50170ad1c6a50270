"""The real Google Cloud Storage emulator (gcp-storage-emulator) for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from tests.support.ports import free_port
from tests.support.servers import answers, start_server

START_TIMEOUT = 30.0


class GcsEmulator:
    """An emulator process keeping objects under `data_dir` (so a restart keeps them)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}-gcs.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """What STORAGE_EMULATOR_HOST must say."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GcsEmulator:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "gcp_storage_emulator", "-d", str(self.data_dir), "start",
                "--host", "127.0.0.1", "--port", str(self.port), "-q"]
        self.process = start_server(args, self.log_path, ready=answers(f"{self.host}/storage/v1/b"),
                                    what="the GCS emulator", timeout=START_TIMEOUT)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def client(self) -> storage.Client:
        os.environ["STORAGE_EMULATOR_HOST"] = self.host
        return storage.Client(project="test", credentials=AnonymousCredentials())  # type: ignore[no-untyped-call]

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(name)
