"""The generated code in client/pachyderm_client/proto/ is exactly what `make protos` produces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("client") / "pachyderm_client" / "proto"


def test_regenerating_protos_changes_nothing(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "etc" / "gen_protos.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)
    generated = sorted(p.relative_to(tmp_path) for p in (tmp_path / "pachyderm_client" / "proto").iterdir())
    committed = sorted(p.relative_to(ROOT / "client") for p in (ROOT / PROTO).iterdir()
                       if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")))
    assert generated == committed
    for path in generated:
        assert (tmp_path / path).read_bytes() == (ROOT / "client" / path).read_bytes(), f"{path} differs; run make protos"


def test_the_services_have_their_v1_2_names() -> None:
    from pachyderm_client.proto import health_pb2, pfs_pb2, pps_internal_pb2, pps_pb2, protoversion_pb2

    names = {
        pfs_pb2.DESCRIPTOR.services_by_name["API"].full_name,
        pfs_pb2.DESCRIPTOR.services_by_name["BlockAPI"].full_name,
        pps_pb2.DESCRIPTOR.services_by_name["API"].full_name,
        pps_internal_pb2.DESCRIPTOR.services_by_name["InternalJobAPI"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        protoversion_pb2.DESCRIPTOR.services_by_name["API"].full_name,
    }
    assert names == {"pfs.API", "pfs.BlockAPI", "pachyderm.pps.API", "pachyderm.pps.InternalJobAPI",
                     "health.Health", "protoversion.API"}
