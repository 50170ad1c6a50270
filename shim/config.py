"""The shim's settings, from its environment (the only place the shim reads it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ShimConfig:
    """What the shim reads from its environment (load())."""

    pachd_address: str
    pfs_root: Path  # where the pod's data is laid out: /pfs
    pod_index: int | None  # the index the executor started this pod for, if it said
    pod_name: str
    tls_ca: bytes | None
    job_token: str  # the pod's credential for its own job (PACH_JOB_TOKEN), "" if pachd gave none
    pfs_mode: str  # "copy" (download the shard, upload /pfs/out after) or "fuse" (mount it)
    environment: dict[str, str]  # what the user's code starts from (the pod's environment)
    # Set by the local executor (OUT_ENV) when /pfs/prev and /pfs/out already show this commit (an
    # overlay of pachd's laid-out copy, pachd/executor/overlay.py) and the overlay's changes are read here.
    out_base: str = ""
    out_changes: Path | None = None


OUT_ENV = ("PACH_OUT_BASE", "PACH_OUT_CHANGES")  # the shim's own: not passed on to the user's code


def load() -> ShimConfig:
    """PACHD_ADDRESS=host:port, or Kubernetes' service variables PACHD_PORT_650_TCP_ADDR
    and PACHD_PORT_650_TCP_PORT (650 unless it says otherwise)."""
    env = os.environ
    address = env.get("PACHD_ADDRESS", "")
    if not address and env.get("PACHD_PORT_650_TCP_ADDR"):
        address = f"{env['PACHD_PORT_650_TCP_ADDR']}:{env.get('PACHD_PORT_650_TCP_PORT') or 650}"
    if not address:
        raise SystemExit("job-shim: set PACHD_ADDRESS (host:port) or PACHD_PORT_650_TCP_ADDR to reach pachd")
    index = env.get("PACH_POD_INDEX") or env.get("JOB_COMPLETION_INDEX")
    ca_path = env.get("PACHD_TLS_CA")
    return ShimConfig(
        pachd_address=address,
        pfs_root=Path(env.get("PACH_PFS_ROOT", "/pfs")),
        pod_index=int(index) if index and index.isdigit() else None,
        pod_name=env.get("PACH_POD_NAME") or env.get("HOSTNAME", ""),
        tls_ca=Path(ca_path).read_bytes() if ca_path else None,
        job_token=env.get("PACH_JOB_TOKEN", ""),
        pfs_mode=env.get("PACH_PFS_MODE", "copy"),
        environment=dict(env),
        out_base=env.get("PACH_OUT_BASE", ""),
        out_changes=Path(env["PACH_OUT_CHANGES"]) if env.get("PACH_OUT_CHANGES") else None,
    )


def adopt(environment: dict[str, str]) -> None:
    """A warm pod's assignment: the environment a pod started for its job would have had
    becomes this process's (what load() then reads, and what the user's code starts from)."""
    os.environ.clear()
    os.environ.update(environment)
