"""Executors: where the pods of jobs run (see base.py for the contract)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from pachd.config import PachdConfig
from pachd.executor.base import Executor

logger = logging.getLogger(__name__)


def create_executor(config: PachdConfig, port: int) -> Executor:
    """The executor the config names, reaching pachd on `port`."""
    if config.executor == "local":
        from pachd.executor.local import LocalExecutor
        from pachd.executor.namespace import probe_namespace_support

        support = probe_namespace_support()
        if not support.supported:
            logger.error("local pods cannot run here: %s", support.message)
        shim = Path(sys.executable).with_name("job-shim")
        base_env = {"PATH": config.pod_path, "LANG": "C.UTF-8", "PACH_PFS_MODE": config.pod_pfs}
        if config.tls_cert is not None:
            base_env["PACHD_TLS_CA"] = str(config.tls_cert.resolve())  # pods trust pachd's own certificate
        return LocalExecutor(
            root=config.data_dir / "pods",
            pachd_address=f"127.0.0.1:{port}",
            shim=str(shim) if shim.exists() else "job-shim",
            base_env=base_env,
        )
    raise SystemExit(f"pachd: the {config.executor} executor is not available in this build")
