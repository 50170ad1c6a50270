"""Microsoft's Azure Storage emulator, Azurite, for tests (installed by `make test` from
tests/support/azurite/package-lock.json).

Azurite keeps blobs under `data_dir`, so `stop()` (a real stop of the process)
and `start()` keep them. It listens behind a StoreFront, which can throttle
requests as a busy account does (503 ServerBusy).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from azure.storage.blob import ContainerClient

from pachd.storage.azure import RETRIES, container_client
from tests.support.ports import free_port
from tests.support.servers import listens, start_server
from tests.support.store_front import StoreFront, Throttle

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
PACKAGE = Path(__file__).resolve().parent / "azurite"
BINARY = PACKAGE / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one built-in account and its published key.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SERVER_BUSY = Throttle(503, b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
                            b"<Message>The server is currently unable to receive requests. Please retry your "
                            b"request.</Message></Error>")


class Azurite:
    """Azurite's blob service on a free loopback port, reached through `front`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}-azurite.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.front = StoreFront(self.port)

    @property
    def endpoint(self) -> str:
        """The blob service URL pachd's --azure-endpoint gets."""
        return f"{self.front.url}/{ACCOUNT}"

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_ACCOUNT": ACCOUNT, "AZURE_STORAGE_KEY": KEY,
                "AZURE_STORAGE_BLOB_ENDPOINT": self.endpoint}

    def start(self) -> Azurite:
        if not BINARY.exists():
            raise RuntimeError(f"Azurite is not installed; run `make test` or `npm ci` in {PACKAGE}")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [str(BINARY), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location",
                str(self.data_dir), "--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
        self.process = start_server(args, self.log_path, ready=listens(self.port), what="Azurite",
                                    timeout=START_TIMEOUT)
        self.front.restore()
        return self

    def stop(self) -> None:
        """Stops Azurite (it saves its metadata on the way out) and the front."""
        self.front.cut()
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def client(self, container: str, retries: int = RETRIES) -> ContainerClient:
        return container_client(container=container, account=ACCOUNT, key=KEY, endpoint=self.endpoint,
                                retries=retries)

    def create_container(self, name: str) -> None:
        with self.client(name) as client:
            client.create_container()

