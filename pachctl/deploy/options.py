"""What a deployment is made of: the choices `pachctl deploy` takes, checked.

`DeployOptions` holds every choice with its default; `check` rejects values
Kubernetes or the chosen target cannot use; `command_line` gives back the
shortest `pachctl deploy ...` that produces the same options, which the
rendered stream names in its header so a manifest says how it was made.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import shlex
import urllib.parse
from dataclasses import dataclass

from pachyderm_client.errors import InvalidArgumentError
from pachd import VERSION, VERSION_ADDITIONAL

TARGETS = ("local", "google", "amazon", "microsoft")
CLOUD_TARGETS = ("google", "amazon", "microsoft")  # blocks in the provider's store, etcd on its disk
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

# Which options belong to some targets only (the others apply to all).
_TARGET_ONLY: dict[str, tuple[str, ...]] = {
    "host_path": ("local",),
    "bucket": ("google", "amazon"),
    "disk_name": ("google",),
    "disk_size": CLOUD_TARGETS,
    "access_key_id": ("amazon",), "secret_access_key": ("amazon",), "session_token": ("amazon",),
    "region": ("amazon",), "volume_id": ("amazon",), "s3_endpoint": ("amazon",),
    "container": ("microsoft",), "account_name": ("microsoft",), "account_key": ("microsoft",),
    "volume_uri": ("microsoft",),
}
# What each target cannot do without, and what it is.
_REQUIRED: dict[str, tuple[tuple[str, str], ...]] = {
    "google": (("bucket", "the GCS bucket to keep blocks in"),),
    "amazon": (("bucket", "the S3 bucket to keep blocks in"), ("volume_id", "the EBS volume for etcd's data")),
    "microsoft": (("container", "the blob container to keep blocks in"),
                  ("account_name", "the storage account of that container"),
                  ("account_key", "that account's key"),
                  ("volume_uri", "the Azure disk for etcd's data")),
}
# Shown as HIDDEN in the command line a manifest's header names.
SECRET_OPTIONS = ("secret_access_key", "session_token", "account_key")
HIDDEN = "<hidden>"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_GCE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_BUCKET = re.compile(r"[a-z0-9][-_.a-z0-9]{1,220}[a-z0-9]")
_S3_BUCKET = re.compile(r"[a-z0-9][-.a-z0-9]{1,61}[a-z0-9]")
_EBS_VOLUME = re.compile(r"(aws://[-a-z0-9]+/)?vol-[0-9a-f]{8,17}")
_AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_CONTAINER = re.compile(r"[a-z0-9](?!.*--)[-a-z0-9]{1,61}[a-z0-9]")
_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployOptions:
    """Everything that varies between deployments; the defaults make a one-node cluster."""

    target: str = "local"  # "local": blocks on the node's disk; google, amazon, microsoft: in the cloud's store
    host_path: str = "/var/pachyderm"  # local: the node directory holding pachd's data and etcd's
    bucket: str = ""  # google, amazon: the GCS or S3 bucket for blocks (required)
    disk_name: str = "pach-disk"  # google: an existing GCE persistent disk for etcd
    disk_size: int = 10  # google, amazon, microsoft: etcd's disk's size in GB
    # amazon: credentials (empty: the pod's own, from an IAM role), the region, etcd's EBS volume
    access_key_id: str = ""
    secret_access_key: str = ""
    session_token: str = ""
    region: str = ""
    volume_id: str = ""  # required: vol-... (or aws://ZONE/vol-...)
    s3_endpoint: str = ""  # an S3-compatible store (MinIO, Ceph) instead of AWS
    # microsoft: the blob container, its storage account and key, etcd's Azure disk
    container: str = ""
    account_name: str = ""
    account_key: str = ""  # base64, as the Azure portal shows it
    volume_uri: str = ""  # a VHD blob's URL, or a managed disk's /subscriptions/... resource ID
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
    for name, targets in _TARGET_ONLY.items():
        if options.target not in targets and getattr(options, name) != getattr(DEFAULTS, name):
            problems.append(f"{flag(name)} only applies to `pachctl deploy {' or '.join(targets)}`")
    for name, what in _REQUIRED.get(options.target, ()):
        if not getattr(options, name):
            problems.append(f"`pachctl deploy {options.target}` needs {flag(name)}: {what}")
    if options.target == "amazon":
        problems += _amazon_problems(options)
    if options.target == "microsoft":
        problems += _microsoft_problems(options)
    return problems


def _amazon_problems(options: DeployOptions) -> list[str]:
    checks = [
        (not options.bucket or _S3_BUCKET.fullmatch(options.bucket) is not None,
         f"--bucket {options.bucket!r} is not a valid S3 bucket name"),
        (bool(options.access_key_id) == bool(options.secret_access_key),
         "--access-key-id and --secret-access-key go together (give neither to use the pods' IAM role)"),
        (not options.session_token or bool(options.access_key_id),
         "--session-token needs --access-key-id and --secret-access-key"),
        (not options.region or _AWS_REGION.fullmatch(options.region) is not None,
         f"--region {options.region!r} is not an AWS region (such as us-west-2)"),
        (not options.volume_id or _EBS_VOLUME.fullmatch(options.volume_id) is not None,
         f"--volume-id {options.volume_id!r} is not an EBS volume ID (vol-...)"),
        (not options.s3_endpoint or urllib.parse.urlsplit(options.s3_endpoint).scheme in ("http", "https"),
         f"--s3-endpoint {options.s3_endpoint!r} is not an http(s) URL"),
    ]
    return [message for ok, message in checks if not ok]


def _microsoft_problems(options: DeployOptions) -> list[str]:
    checks = [
        (not options.container or _CONTAINER.fullmatch(options.container) is not None,
         f"--container {options.container!r} is not a valid blob container name"),
        (not options.account_name or _ACCOUNT.fullmatch(options.account_name) is not None,
         f"--account-name {options.account_name!r} is not a valid storage account name"),
        # v1.2's texts for these two
        (_is_base64(options.account_key),
         f"storage-account-key needs to be base64 encoded; instead got '{options.account_key}'"),
        (not options.volume_uri or _is_request_uri(options.volume_uri),
         f"volume-uri needs to be a well-formed URI; instead got '{options.volume_uri}'"),
    ]
    return [message for ok, message in checks if not ok]


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
        return True
    except binascii.Error:
        return False


def _is_request_uri(text: str) -> bool:
    """An absolute URL with a host, or an absolute path (a managed disk's resource ID)."""
    if " " in text:
        return False
    parts = urllib.parse.urlsplit(text)
    return (bool(parts.scheme) and bool(parts.netloc)) or (not parts.scheme and text.startswith("/"))


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
        (not options.bucket or options.target != "google" or _BUCKET.fullmatch(options.bucket) is not None,
         f"--bucket {options.bucket!r} is not a valid GCS bucket name"),
        (_GCE_NAME.fullmatch(options.disk_name) is not None,
         f"--disk-name {options.disk_name!r} is not a valid GCE disk name"),
        (options.disk_size >= 1, "--disk-size is in GB and must be at least 1"),
    ]
    return [message for ok, message in checks if not ok]


def command_line(options: DeployOptions, *, hide_secrets: bool = True) -> str:
    """The shortest `pachctl deploy` command line that makes `options` (secret values
    shown as HIDDEN unless `hide_secrets` is false)."""
    words = ["pachctl", "deploy", options.target]
    for field in dataclasses.fields(DeployOptions):
        value = getattr(options, field.name)
        if field.name == "target" or value == getattr(DEFAULTS, field.name):
            continue
        if isinstance(value, bool):
            words += [f"{flag(field.name)}={str(value).lower()}"]
        else:
            words += [flag(field.name), HIDDEN if hide_secrets and field.name in SECRET_OPTIONS else str(value)]
    return shlex.join(words)
