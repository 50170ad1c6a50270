"""Regenerates the Python code for the client's .proto files (run by `make protos`).

The .proto files live in client/pachyderm_client/proto/ and import each other by
their path under client/ ("pachyderm_client/proto/pfs.proto"), so the generated
modules import each other as `pachyderm_client.proto.*`. The output lands beside
the .proto files, or under --out/pachyderm_client/proto/ (the test that checks
regeneration changes nothing writes to a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent / "client"
PROTO_DIR = ROOT / "pachyderm_client" / "proto"


def generate(out: Path) -> None:
    protos = sorted(p.relative_to(ROOT).as_posix() for p in PROTO_DIR.glob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    plugin_dir = Path(sys.executable).parent
    args = [
        "grpc_tools.protoc",
        f"-I{ROOT}",
        f"-I{include}",
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *protos,
    ]
    # protoc resolves the proto paths relative to the working directory.
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = protoc.main(args)
    finally:
        os.chdir(cwd)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT, help="folder to write pachyderm_client/proto/... into")
    generate(parser.parse_args().out.resolve())


if __name__ == "__main__":
    main()
