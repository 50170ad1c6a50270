"""A real Docker registry on loopback: Debian's docker-registry (distribution 2.8),
its storage in a test directory, on a free port, without authentication.

The engine pushes to it and pulls from it over plain HTTP: dockerd treats
registries on 127.0.0.0/8 as insecure (HTTP) ones by default.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.local_pods import kill_group
from tests.support.ports import free_port
from tests.support.wait import wait_until

CONFIG = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Registry:
        program = shutil.which("docker-registry")
        assert program, "docker-registry is not installed (etc/install-system-packages.sh installs it)"
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "config.yml"
        config.write_text(CONFIG.format(root=self.root / "storage", port=self.port))
        log = open(self.root / "registry.log", "ab")
        self.process = subprocess.Popen([program, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        wait_until(self._answers, what=f"the registry at {self.address}", timeout=60)
        return self

    def _answers(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, (self.root / "registry.log").read_text()[-2000:]
        try:
            with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=5) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        return (self.root / "registry.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process)
            self.process.wait()
            self.process = None
