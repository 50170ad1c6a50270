"""pachd's configuration: one frozen PachdConfig, built once at start-up.

Each setting comes from a command-line flag, else from an environment variable
(keeping Pachyderm v1.2's names where it had one), else from a default. This is
the only module of pachd that reads os.environ.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 30650
DEFAULT_HTTP_PORT = 30080


@dataclass(frozen=True, slots=True)
class PachdConfig:
    """Everything pachd needs to know to start."""

    port: int = DEFAULT_PORT
    http_port: int = DEFAULT_HTTP_PORT  # the web console; 0 turns it off
    host: str = "127.0.0.1"  # loopback only unless told otherwise (the images and manifests say 0.0.0.0)
    data_dir: Path = Path.home() / ".pachyderm" / "data"
    etcd_address: str = ""  # host:port; empty means the embedded SQLite store
    storage: str = "local"  # "local" (files under data_dir), "gcs", "s3" or "azure"
    gcs_bucket: str = ""
    # --storage s3: credentials not given come from the standard AWS chain (env, ~/.aws, a role)
    s3_bucket: str = ""
    s3_region: str = ""
    s3_endpoint: str = ""  # an S3-compatible store (MinIO, Ceph); empty: AWS itself
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_session_token: str = ""
    # --storage azure
    azure_container: str = ""
    azure_account: str = ""
    azure_key: str = ""
    azure_endpoint: str = ""  # empty: https://<account>.blob.core.windows.net
    log_level: str = "INFO"
    max_message_bytes: int = 64 * 1024 * 1024
    executor: str = "local"  # "local" (pods as processes), "kubernetes" or "docker"
    job_shim_image: str = "pachyderm/job-shim"
    job_shim_command: str = ""  # the program local pods run; empty: this build's job-shim
    pod_path: str = "/usr/local/bin:/usr/bin:/bin"  # PATH inside local pods
    pod_pfs: str = "copy"  # how pods see /pfs: "copy" (downloaded) or "fuse" (mounted)
    warm_pods: int = 3  # local pods of our job shim started ahead of their jobs (0: each pod starts with its job)
    lease_ttl: float = 10.0  # seconds before another replica takes over a dead one's pipelines
    tls_cert: Path | None = None  # with tls_key: serve TLS (plaintext otherwise)
    tls_key: Path | None = None
    auth_token_file: Path | None = None  # every RPC but health and version must carry this bearer token
    allow_anonymous_pods: bool = False  # StartJob/FinishJob without a job credential (v1.2's Go shim)
    pod_network: str = "host"  # local pods: "host" (the host's network) or "none" (only pachd's socket)
    url_allow: tuple[str, ...] = ()  # hosts or networks put-file may fetch though they are private
    # Cluster executors (kubernetes, docker)
    namespace: str = "default"  # the Kubernetes namespace of pachd and its job pods
    kubeconfig: str = ""  # empty: in-cluster config inside a pod, else ~/.kube/config
    in_cluster: bool = False  # pachd itself runs in a Kubernetes pod
    image_pull_policy: str = "IfNotPresent"  # Always, IfNotPresent or Never, for job pods
    pod_pachd_address: str = ""  # host:port pods dial; empty: what suits the executor
    docker_host: str = "unix:///var/run/docker.sock"
    slow_callback: float = 0.0  # > 0: log callbacks that hold the event loop this long (loopwatch.py)

    @property
    def uses_tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def auth_token(self) -> str:
        """The admin token of --auth-token-file (its first line), or "" without one."""
        if self.auth_token_file is None:
            return ""
        return self.auth_token_file.read_text().strip()

    @property
    def uses_etcd(self) -> bool:
        return bool(self.etcd_address)


# flag name -> (environment variables in order of preference, help)
_SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "port": (("PORT",), f"gRPC port (default {DEFAULT_PORT})"),
    "http_port": (("PACHD_HTTP_PORT",), f"web console port, on the same address (default {DEFAULT_HTTP_PORT}; 0: no console)"),
    "host": (("PACHD_HOST",), "address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)"),
    "data_dir": (("PACH_ROOT", "PACHD_DATA_DIR"), "embedded metadata and local blocks (default ~/.pachyderm/data)"),
    "etcd": (("ETCD_ADDRESS",), "keep metadata in etcd at HOST:PORT instead of the embedded store"),
    "storage": (("STORAGE_BACKEND",), "where blocks live: local, gcs, s3 or azure (default local)"),
    "gcs_bucket": (("GCS_BUCKET",), "the Google Cloud Storage bucket for --storage gcs"),
    "s3_bucket": (("S3_BUCKET",), "the S3 bucket for --storage s3"),
    "s3_region": (("AWS_REGION", "AWS_DEFAULT_REGION"), "the bucket's AWS region (default: the AWS config's)"),
    "s3_endpoint": (("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
                    "URL of an S3-compatible store such as MinIO or Ceph (default: AWS)"),
    "s3_access_key": (("AWS_ACCESS_KEY_ID",), "S3 access key ID (default: the standard AWS chain)"),
    "s3_secret_key": (("AWS_SECRET_ACCESS_KEY",), "S3 secret access key"),
    "s3_session_token": (("AWS_SESSION_TOKEN",), "S3 session token, for temporary credentials"),
    "azure_container": (("AZURE_STORAGE_CONTAINER",), "the Azure blob container for --storage azure"),
    "azure_account": (("AZURE_STORAGE_ACCOUNT",), "the Azure storage account's name"),
    "azure_key": (("AZURE_STORAGE_KEY",), "the Azure storage account's key (base64)"),
    "azure_endpoint": (("AZURE_STORAGE_BLOB_ENDPOINT",),
                       "the blob service URL (default https://ACCOUNT.blob.core.windows.net)"),
    "log_level": (("LOG_LEVEL",), "DEBUG, INFO, WARNING or ERROR (default INFO)"),
    "executor": (("PACHD_EXECUTOR",), "where pods run: local, kubernetes or docker (default local)"),
    "job_shim_image": (("JOB_SHIM_IMAGE",), "image for pipelines that name none (default pachyderm/job-shim)"),
    "job_shim_command": (("JOB_SHIM_COMMAND",), "the program local pods run, e.g. v1.2's Go job-shim (default: job-shim)"),
    "pod_pfs": (("PACHD_POD_PFS",), "how pods see /pfs: copy (download the shard) or fuse (mount it)"),
    "warm_pods": (("PACHD_WARM_PODS",), "local pods started ahead of their jobs, confined alike, so a job's pod "
                  "starts at once (default 3; 0: none)"),
    "lease_ttl": (("PACHD_LEASE_TTL",), "seconds a dead replica's pipelines wait before another takes them (default 10)"),
    "tls_cert": (("PACHD_TLS_CERT",), "serve TLS with this certificate (PEM); needs --tls-key"),
    "tls_key": (("PACHD_TLS_KEY",), "the private key (PEM) of --tls-cert"),
    "auth_token_file": (("PACHD_AUTH_TOKEN_FILE",), "require every RPC but health and version to carry the "
                        "bearer token in this file"),
    "pod_network": (("PACHD_POD_NETWORK",), "local pods' network: host (default) or none (they reach only pachd)"),
    "url_allow": (("PACHD_URL_ALLOW",), "comma-separated hosts or networks (CIDR) put-file may fetch from "
                  "although they are loopback, private or link-local"),
    "namespace": (("NAMESPACE",), "Kubernetes namespace for job pods (default: default)"),
    "kubeconfig": (("KUBECONFIG",), "kubeconfig file (default: in-cluster config, else ~/.kube/config)"),
    "image_pull_policy": (("JOB_IMAGE_PULL_POLICY",), "Always, IfNotPresent or Never for job images (default IfNotPresent)"),
    "pod_pachd_address": (("PACHD_POD_ADDRESS",), "HOST:PORT job pods dial to reach pachd (default: the pachd service, port 650)"),
    "docker_host": (("DOCKER_HOST",), "the Docker engine for --executor docker (default unix:///var/run/docker.sock)"),
    "slow_callback": (("PACHD_SLOW_CALLBACK",), "log each event-loop callback that runs longer than this many "
                      "seconds, with their CPU time (default 0: off)"),
}


STORAGE_BACKENDS = ("local", "gcs", "s3", "azure")
# What each block store cannot start without.
_STORAGE_NEEDS = {"gcs": ("gcs_bucket",), "s3": ("s3_bucket",),
                  "azure": ("azure_container", "azure_account", "azure_key")}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pachd", description="The Pachyderm server.")
    for name, (envs, help_text) in _SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, dest=name, default=None, help=f"{help_text}; env {' or '.join(envs)}")
    parser.add_argument("--allow-anonymous-pods", action="store_true", default=None,
                        help="let pods without a job credential (v1.2's Go shim) call StartJob and FinishJob; "
                             "env PACHD_ALLOW_ANONYMOUS_PODS=1")
    return parser


def _env_address(env: Mapping[str, str]) -> str:
    # Kubernetes service variables, as v1.2 used them: host only, port 2379.
    host = env.get("ETCD_PORT_2379_TCP_ADDR", "")
    return f"{host}:2379" if host else ""


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> PachdConfig:
    """Builds the config from flags, then the environment, then defaults."""
    env = os.environ if env is None else env
    args = vars(build_parser().parse_args(argv))

    def pick(name: str) -> str | None:
        if name == "allow_anonymous_pods":
            return "1" if args[name] else env.get("PACHD_ALLOW_ANONYMOUS_PODS")
        if args[name] is not None:
            return str(args[name])
        for var in _SETTINGS[name][0]:
            if env.get(var):
                return env[var]
        return None

    defaults = PachdConfig()
    port = pick("port")
    http_port = pick("http_port")
    data_dir = pick("data_dir")
    storage = (pick("storage") or defaults.storage).lower()
    if storage not in STORAGE_BACKENDS:
        raise SystemExit(f"pachd: --storage must be local, gcs, s3 or azure, not {storage!r}")
    for needed in _STORAGE_NEEDS.get(storage, ()):
        if not pick(needed):
            flag, envs = "--" + needed.replace("_", "-"), _SETTINGS[needed][0]
            raise SystemExit(f"pachd: --storage {storage} needs {flag} (or {' or '.join(envs)})")
    gcs_bucket = pick("gcs_bucket") or ""
    executor = (pick("executor") or defaults.executor).lower()
    if executor not in ("local", "kubernetes", "docker"):
        raise SystemExit(f"pachd: --executor must be local, kubernetes or docker, not {executor!r}")
    pod_pfs = (pick("pod_pfs") or defaults.pod_pfs).lower()
    if pod_pfs not in ("copy", "fuse"):
        raise SystemExit(f"pachd: --pod-pfs must be copy or fuse, not {pod_pfs!r}")
    tls_cert, tls_key = pick("tls_cert"), pick("tls_key")
    if bool(tls_cert) != bool(tls_key):
        raise SystemExit("pachd: --tls-cert and --tls-key go together")
    lease_ttl = pick("lease_ttl")
    warm_pods = pick("warm_pods")
    if warm_pods is not None and (not warm_pods.isdigit()):
        raise SystemExit(f"pachd: --warm-pods must be a number of pods, not {warm_pods!r}")
    slow_callback = pick("slow_callback")
    pod_network = (pick("pod_network") or defaults.pod_network).lower()
    if pod_network not in ("host", "none"):
        raise SystemExit(f"pachd: --pod-network must be host or none, not {pod_network!r}")
    token_file = pick("auth_token_file")
    if token_file and not Path(token_file).read_text().strip():
        raise SystemExit(f"pachd: --auth-token-file {token_file} holds no token")
    pull_policy = pick("image_pull_policy") or defaults.image_pull_policy
    if pull_policy not in ("Always", "IfNotPresent", "Never"):
        raise SystemExit(f"pachd: --image-pull-policy must be Always, IfNotPresent or Never, not {pull_policy!r}")
    return PachdConfig(
        namespace=pick("namespace") or defaults.namespace,
        kubeconfig=pick("kubeconfig") or "",
        in_cluster=bool(env.get("KUBERNETES_SERVICE_HOST")),
        image_pull_policy=pull_policy,
        pod_pachd_address=pick("pod_pachd_address") or "",
        docker_host=pick("docker_host") or defaults.docker_host,
        lease_ttl=float(lease_ttl) if lease_ttl else defaults.lease_ttl,
        slow_callback=float(slow_callback) if slow_callback else defaults.slow_callback,
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        auth_token_file=Path(token_file) if token_file else None,
        allow_anonymous_pods=(pick("allow_anonymous_pods") or "").lower() in ("1", "true", "yes"),
        pod_network=pod_network,
        url_allow=tuple(a.strip() for a in (pick("url_allow") or "").split(",") if a.strip()),
        pod_pfs=pod_pfs,
        warm_pods=int(warm_pods) if warm_pods is not None else defaults.warm_pods,
        executor=executor,
        job_shim_image=pick("job_shim_image") or defaults.job_shim_image,
        job_shim_command=pick("job_shim_command") or "",
        pod_path=env.get("PATH", defaults.pod_path),
        port=int(port) if port else defaults.port,
        http_port=int(http_port) if http_port else defaults.http_port,
        host=pick("host") or defaults.host,
        data_dir=Path(data_dir).expanduser() if data_dir else defaults.data_dir,
        etcd_address=pick("etcd") or _env_address(env),
        storage=storage,
        gcs_bucket=gcs_bucket,
        s3_bucket=pick("s3_bucket") or "",
        s3_region=pick("s3_region") or "",
        s3_endpoint=pick("s3_endpoint") or "",
        s3_access_key=pick("s3_access_key") or "",
        s3_secret_key=pick("s3_secret_key") or "",
        s3_session_token=pick("s3_session_token") or "",
        azure_container=pick("azure_container") or "",
        azure_account=pick("azure_account") or "",
        azure_key=pick("azure_key") or "",
        azure_endpoint=pick("azure_endpoint") or "",
        log_level=(pick("log_level") or defaults.log_level).upper(),
    )
