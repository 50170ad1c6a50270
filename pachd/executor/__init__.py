"""Executors: where the pods of jobs run (see base.py for the contract)."""

from __future__ import annotations

import logging
import sys
from typing import Any
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
            shim=config.job_shim_command or (str(shim) if shim.exists() else "job-shim"),
            base_env=base_env,
        )
    if config.executor == "kubernetes":
        from pachd.executor.kubernetes import KubernetesExecutor

        return KubernetesExecutor(
            api=_kubernetes_api(config),
            namespace=config.namespace,
            pachd_address=config.pod_pachd_address or "pachd:650",  # the pachd service of the namespace
            base_env={"PACH_PFS_MODE": config.pod_pfs},
            image_pull_policy=config.image_pull_policy,
            privileged=config.pod_pfs == "fuse",
        )
    if config.executor == "docker":
        from pachd.executor.docker import DockerExecutor

        extra_hosts = {}
        address = config.pod_pachd_address
        if not address:  # the engine's name for the host; pachd must listen where containers reach it
            address, extra_hosts = f"host.docker.internal:{port}", {"host.docker.internal": "host-gateway"}
            if config.host in ("127.0.0.1", "localhost", "::1"):
                logger.warning("pachd listens on %s only: containers cannot reach it through "
                               "host.docker.internal; listen on 0.0.0.0 or set --pod-pachd-address", config.host)
        return DockerExecutor(
            docker_host=config.docker_host,
            pachd_address=address,
            base_env={"PACH_PFS_MODE": config.pod_pfs},
            image_pull_policy=config.image_pull_policy,
            extra_hosts=extra_hosts,
            privileged=config.pod_pfs == "fuse",
        )
    raise SystemExit(f"pachd: the {config.executor} executor is not available in this build")


def _kubernetes_api(config: PachdConfig) -> Any:
    """A client of the cluster: the kubeconfig given, else the pod's service account
    when pachd runs in the cluster, else ~/.kube/config."""
    from kubernetes import client
    from kubernetes import config as kube_config

    settings = client.Configuration()
    try:
        if config.kubeconfig or not config.in_cluster:
            kube_config.load_kube_config(config_file=config.kubeconfig or None, client_configuration=settings)
        else:
            kube_config.load_incluster_config(client_configuration=settings)
    except (kube_config.ConfigException, OSError) as err:
        raise SystemExit(f"pachd: --executor kubernetes cannot find the cluster: {err}") from None
    return client.ApiClient(settings)
