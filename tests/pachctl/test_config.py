"""~/.pachyderm/config.json (or PACH_CONFIG): address, TLS CA and token, under ADDRESS and --address."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.pachd import PachdProcess
from tests.support.ports import free_port


def _pachctl(*args: str, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ADDRESS", "PACH"))}
    return subprocess.run([sys.executable, "-m", "pachctl.main", *args], capture_output=True, text=True, timeout=120,
                          env={**base, "PACH_CONFIG": str(config), **env})


def _write(path: Path, settings: dict[str, str]) -> Path:
    path.write_text(json.dumps(settings))
    return path


def test_the_config_file_gives_the_address(pachd: PachdProcess, tmp_path: Path) -> None:
    config = _write(tmp_path / "config.json", {"address": pachd.address})
    assert _pachctl("list-repo", config=config).returncode == 0


def test_address_and_the_flag_override_the_file(pachd: PachdProcess, tmp_path: Path) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    config = _write(tmp_path / "config.json", {"address": nowhere})
    assert _pachctl("list-repo", config=config, ADDRESS=pachd.address).returncode == 0
    flagged = _pachctl("list-repo", "--address", pachd.address, config=config, ADDRESS=nowhere)
    assert flagged.returncode == 0, flagged.stderr
    assert _pachctl("--address", pachd.address, "list-repo", config=config).returncode == 0
    failed = _pachctl("list-repo", config=config)
    assert failed.returncode == 1 and nowhere in failed.stderr


def test_the_token_comes_from_the_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-the-config-file\n")
    token_file.chmod(0o600)
    server = PachdProcess(tmp_path / "data", extra_args=["--auth-token-file", str(token_file)]).start()
    try:
        without = _write(tmp_path / "without.json", {"address": server.address})
        assert _pachctl("list-repo", config=without).returncode == 1
        with_token = _write(tmp_path / "with.json", {"address": server.address, "token": "from-the-config-file"})
        ran = _pachctl("list-repo", config=with_token)
        assert ran.returncode == 0, ran.stderr
    finally:
        server.stop()


def test_a_malformed_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{not json")
    ran = _pachctl("list-repo", config=config)
    assert ran.returncode == 1 and str(config) in ran.stderr and len(ran.stderr.splitlines()) == 1
    _write(config, {"adress": "x"})
    assert "adress" in _pachctl("list-repo", config=config).stderr
