"""pachd driven from Node.js with stock @grpc/grpc-js and @grpc/proto-loader,
built from the client's .proto files alone (tests/foreign/node/client.js)."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pachyderm_client import Client

NODE_CLIENT = Path(__file__).parent / "node" / "client.js"
SIZE = 3 * 1024 * 1024 + 12_345  # several 256 KiB chunks, past the 1 MiB small-file limit


def content(size: int) -> bytes:
    """The bytes client.js sends: (i * 7 + 3) mod 251."""
    pattern = bytes((i * 7 + 3) % 251 for i in range(251))
    return (pattern * (size // 251 + 1))[:size]


def test_node_client_puts_and_gets_a_file(client: Client) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_CLIENT.parent / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("node and tests/foreign/node/node_modules are installed by `make test`")
    run = subprocess.run([node, str(NODE_CLIENT), client.address, "from_node", str(SIZE)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    expected = hashlib.sha256(content(SIZE)).hexdigest()
    assert seen["sent_sha256"] == expected  # both sides made the same bytes
    assert seen["read_sha256"] == expected and seen["read_bytes"] == SIZE
    assert seen["commits"] == [{"id": seen["commit"], "size_bytes": SIZE, "finished": True}]
    assert seen["missing_repo_status"] == "NOT_FOUND"
    # What Node wrote is what Python reads.
    assert client.get_file_bytes(("from_node", seen["commit"]), "data") == content(SIZE)
