"""A real S3 HTTP API server for tests: moto in server mode, behind a StoreFront.

moto keeps objects in memory, so an outage is made at the front (see
store_front.py): `stop()` cuts the store off and `start()` brings it back
with its objects, as an S3 outage would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from mypy_boto3_s3.client import S3Client

from pachd.storage.s3 import MAX_ATTEMPTS, s3_client
from tests.support.ports import free_port
from tests.support.servers import answers, start_server
from tests.support.store_front import StoreFront, Throttle

START_TIMEOUT = 30.0
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"
SLOW_DOWN = Throttle(503, b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                          b"<Message>Please reduce your request rate.</Message></Error>")


class S3Server:
    """moto's server on a free loopback port, reached through `front`."""

    def __init__(self, log_dir: Path) -> None:
        self.log_path = log_dir / "moto.log"
        self.moto_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.front = StoreFront(self.moto_port)

    @property
    def endpoint(self) -> str:
        """The URL pachd's --s3-endpoint gets."""
        return self.front.url

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a pachd (or check) at this server."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                "AWS_ENDPOINT_URL_S3": self.endpoint}

    def launch(self) -> S3Server:
        args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.moto_port)]
        self.process = start_server(args, self.log_path, ready=answers(f"http://127.0.0.1:{self.moto_port}/moto-api/"),
                                    what="the S3 server", timeout=START_TIMEOUT)
        self.front.start()
        return self

    def start(self) -> None:
        """Ends an outage: the store is reachable again, with its objects."""
        self.front.restore()

    def stop(self) -> None:
        """An outage: connections to the store are dropped and refused."""
        self.front.cut()

    def shutdown(self) -> None:
        self.front.cut()
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def client(self, max_attempts: int = MAX_ATTEMPTS) -> S3Client:
        return s3_client(region=REGION, endpoint=self.endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY,
                         max_attempts=max_attempts)

    def create_bucket(self, name: str) -> None:
        client = self.client()
        client.create_bucket(Bucket=name)
        client.close()
