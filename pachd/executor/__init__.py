"""Executors: where the pods of jobs run (see base.py for the contract)."""

from __future__ import annotations

import dataclasses
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from pachd.config import PachdConfig
from pachd.executor.base import Executor
from pachd.executor.namespace import NamespaceSupport, Sandbox, probe
from pachd.executor.outputs import Layouts

logger = logging.getLogger(__name__)


def create_executor(config: PachdConfig, port: int, *, cluster: str, socket_dir: Path | None = None,
                    layouts: Layouts | None = None) -> Executor:
    """The executor the config names, reaching pachd on `port` (local pods
    without a network: through the Unix socket in `socket_dir`); `layouts` lays commits
    out on this machine (local pods mount their previous output from there)."""
    if config.executor == "local":
        from pachd.executor.local import LocalExecutor

        sandbox = local_sandbox(config, socket_dir)
        support = _probe(sandbox, config)
        shim = Path(sys.executable).with_name("job-shim")
        return LocalExecutor(
            root=config.data_dir / "pods",
            pachd_address=f"127.0.0.1:{port}",
            shim=config.job_shim_command or (str(shim) if shim.exists() else "job-shim"),
            base_env={"PATH": config.pod_path, "LANG": "C.UTF-8", "PACH_PFS_MODE": config.pod_pfs},
            sandbox=sandbox,
            support=support,
            # Only our own shim knows how to wait for a job (v1.2's Go job-shim does not).
            warm_pods=0 if config.job_shim_command else config.warm_pods,
            own_shim=not config.job_shim_command,
            layouts=layouts,
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
            cluster=cluster,
            pachd_address=address,
            base_env={"PACH_PFS_MODE": config.pod_pfs},
            image_pull_policy=config.image_pull_policy,
            extra_hosts=extra_hosts,
            privileged=config.pod_pfs == "fuse",
        )
    raise SystemExit(f"pachd: the {config.executor} executor is not available in this build")


def local_sandbox(config: PachdConfig, socket_dir: Path | None) -> Sandbox:
    """What local pods see besides the system: the shim's Python and packages;
    what they never see: pachd's data dir, key, certificate and token files."""
    runtime = [Path(sys.base_prefix), Path(sys.prefix)]
    for package in ("shim", "pachctl", "pachyderm_client"):
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.submodule_search_locations:
            runtime += [Path(p) for p in spec.submodule_search_locations]
    hidden = [config.data_dir, *(p for p in (config.tls_cert, config.tls_key, config.auth_token_file) if p)]
    return Sandbox(network=config.pod_network, runtime=tuple(runtime), hidden=tuple(hidden),
                   ca_file=config.tls_cert if socket_dir is None else None, socket_dir=socket_dir,
                   # The program pods run instead of our shim (v1.2's Go job-shim), where it is.
                   extra_binds={Path(c): Path(c) for c in [config.job_shim_command] if c and Path(c).is_absolute()})


def _probe(sandbox: Sandbox, config: PachdConfig) -> NamespaceSupport:
    support = probe(sandbox)
    if not support.supported:
        logger.error("%s; every job will fail until they can", support.message)
        return support
    logger.info("%s", support.message)
    if config.pod_pfs == "fuse":
        fuse = probe(dataclasses.replace(sandbox, fuse=True))
        logger.warning("%s", fuse.message if fuse.supported else f"FUSE pods: {fuse.message}")
    return support


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
