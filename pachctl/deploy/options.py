"""What a deployment is made of: the choices `pachctl deploy` takes, checked.

`DeployOptions` holds every choice with its default; `check` rejects values
Kubernetes or the chosen target cannot use; `command_line` gives back the
shortest `pachctl deploy ...` that produces the same options, which the
rendered stream names in its header so a manifest says how it was made.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from dataclasses import dataclass

from pachctl.client.errors import InvalidArgumentError
from pachd import VERSION, VERSION_ADDITIONAL

TARGETS = ("local", "google")
PULL_POLICIES = ("Always", "IfNotPresent", "Never")

VERSION_TAG = ".".join(str(part) for part in VERSION) + (f"-{VERSION_ADDITIONAL}" if VERSION_ADDITIONAL else "")
DEFAULT_PACHD_IMAGE = f"pachyderm/pachd:{VERSION_TAG}"
DEFAULT_JOB_SHIM_IMAGE = f"pachyderm/job-shim:{VERSION_TAG}"
DEFAULT_ETCD_IMAGE = "quay.io/coreos/etcd:v3.5.17"
DEFAULT_REGISTRY_IMAGE = "registry:2"
PACHD_PORT = 650
REGISTRY_PORT = 5000
DEFAULT_REGISTRY_NODE_PORT = 30500  # where `pachctl create-pipeline --push-images` pushes: localhost:30500
DEFAULT_NODE_PORT = 30650
ETCD_PORT = 2379

# Which options belong to one target only (the others apply to both).
_TARGET_ONLY = {"host_path": "local", "bucket": "google", "disk_name": "google", "disk_size": "google"}

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_BUCKET = re.compile(r"[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployOptions:
    """Everything that varies between deployments; the defaults make a one-node cluster."""

    target: str = "local"  # "local": blocks on the node's disk; "google": blocks in GCS
    host_path: str = "/var/pachyderm"  # local: the node directory holding pachd's data and etcd's
    bucket: str = ""  # google: the GCS bucket for blocks (required)
    disk_name: str = "pach-disk"  # google: an existing GCE persistent disk for etcd
    disk_size: int = 10  # google: that disk's size in GB
    namespace: str = "default"  # where every namespaced object goes
    replicas: int = 1  # pachd pods
    pachd_image: str = DEFAULT_PACHD_IMAGE
    job_shim_image: str = DEFAULT_JOB_SHIM_IMAGE  # for pipelines that name no image
    etcd_image: str = DEFAULT_ETCD_IMAGE
    image_pull_policy: str = "IfNotPresent"  # pachd's and etcd's containers, and job pods
    node_port: int = DEFAULT_NODE_PORT  # where each node exposes pachd's port 650; 0: Kubernetes picks
    registry: bool = True  # a Docker registry beside pachd, for --push-images
    registry_image: str = DEFAULT_REGISTRY_IMAGE
    registry_node_port: int = DEFAULT_REGISTRY_NODE_PORT  # where each node exposes the registry; 0: Kubernetes picks


DEFAULTS = DeployOptions()


def flag(name: str) -> str:
    """The command-line flag of option `name` ("disk_size" -> "--disk-size")."""
    return "--" + name.replace("_", "-")


def check(options: DeployOptions) -> None:
    """Raises InvalidArgumentError naming the first option that cannot work."""
    problems = _target_problems(options) + _value_problems(options)
    if problems:
        raise InvalidArgumentError(problems[0])


def _target_problems(options: DeployOptions) -> list[str]:
    if options.target not in TARGETS:
        return [f"unknown target {options.target!r}; use one of {', '.join(TARGETS)}"]
    problems = []
    for name, target in _TARGET_ONLY.items():
        if target != options.target and getattr(options, name) != getattr(DEFAULTS, name):
            problems.append(f"{flag(name)} only applies to `pachctl deploy {target}`")
    if options.target == "google" and not options.bucket:
        problems.append("`pachctl deploy google` needs --bucket: the GCS bucket to keep blocks in")
    return problems


def _value_problems(options: DeployOptions) -> list[str]:
    checks = [
        (_DNS_LABEL.fullmatch(options.namespace) is not None,
         f"--namespace {options.namespace!r} is not a valid namespace (lower-case letters, digits and '-', "
         "at most 63)"),
        (options.replicas >= 1, "--replicas must be at least 1"),
        (all(image.strip() and " " not in image
             for image in (options.pachd_image, options.job_shim_image, options.etcd_image, options.registry_image)),
         "image names must be non-empty and contain no spaces"),
        (options.image_pull_policy in PULL_POLICIES,
         f"--image-pull-policy must be one of {', '.join(PULL_POLICIES)}"),
        (options.node_port == 0 or 30000 <= options.node_port <= 32767,
         "--node-port must be 0 (any) or in Kubernetes' node port range 30000-32767"),
        (options.registry_node_port == 0 or 30000 <= options.registry_node_port <= 32767,
         "--registry-node-port must be 0 (any) or in Kubernetes' node port range 30000-32767"),
        (not options.registry or options.node_port == 0 or options.node_port != options.registry_node_port,
         "--node-port and --registry-node-port must differ"),
        (options.host_path.startswith("/"), "--host-path must be an absolute path"),
        (not options.bucket or _BUCKET.fullmatch(options.bucket) is not None,
         f"--bucket {options.bucket!r} is not a valid GCS bucket name"),
        (_GCE_NAME.fullmatch(options.disk_name) is not None,
         f"--disk-name {options.disk_name!r} is not a valid GCE disk name"),
        (options.disk_size >= 1, "--disk-size is in GB and must be at least 1"),
    ]
    return [message for ok, message in checks if not ok]


def command_line(options: DeployOptions) -> str:
    """The shortest `pachctl deploy` command line that makes `options`."""
    words = ["pachctl", "deploy", options.target]
    for field in dataclasses.fields(DeployOptions):
        value = getattr(options, field.name)
        if field.name == "target" or value == getattr(DEFAULTS, field.name):
            continue
        words += [f"{flag(field.name)}={str(value).lower()}"] if isinstance(value, bool) else [flag(field.name), str(value)]
    return shlex.join(words)
