"""deploy and port-forward: running Pachyderm on Kubernetes.

`pachctl deploy [local|google|amazon|microsoft]` prints the cluster's
manifests (pipe them into `kubectl create -f -`); `pachctl port-forward`
makes pachd reachable here.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from pachctl.cli.common import add
from pachyderm_client import Client, InvalidArgumentError
from pachctl.deploy import DEFAULTS, PULL_POLICIES, TARGETS, DeployOptions, kubectl, manifest
from pachctl.deploy.options import DEFAULT_NODE_PORT, DEFAULT_REGISTRY_NODE_PORT, flag

# v1.2's forms, each positional argument the same as a flag:
#   pachctl deploy google BUCKET VOLUME-NAME VOLUME-SIZE-GB
#   pachctl deploy amazon BUCKET ID SECRET TOKEN REGION VOLUME-NAME VOLUME-SIZE-GB
#   pachctl deploy microsoft CONTAINER ACCOUNT-NAME ACCOUNT-KEY VOLUME-URI VOLUME-SIZE-GB
_POSITIONALS = {
    "google": ("bucket", "disk_name", "disk_size"),
    "amazon": ("bucket", "access_key_id", "secret_access_key", "session_token", "region", "volume_id", "disk_size"),
    "microsoft": ("container", "account_name", "account_key", "volume_uri", "disk_size"),
}


def deploy(args: argparse.Namespace, client: Client) -> None:
    sys.stdout.write(manifest(DeployOptions(**_options(args))))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {field.name: getattr(args, field.name) for field in dataclasses.fields(DeployOptions)
              if getattr(args, field.name) is not None}
    given: list[str] = args.positionals
    if not given:
        return chosen
    names = _POSITIONALS.get(args.target)
    if names is None:
        raise InvalidArgumentError(f"extra arguments; `deploy {args.target}` takes none")
    if len(given) > len(names):
        raise InvalidArgumentError(f"expected {len(names) + 1} args, got {len(given) + 1}")  # v1.2's text
    for name, text in zip(names, given):
        if name in chosen:
            raise InvalidArgumentError(f"{flag(name)} is given twice, as a flag and as an argument")
        chosen[name] = _volume_size(text) if name == "disk_size" else text
    return chosen


def _volume_size(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"volume size needs to be an integer; instead got {text}") from None  # v1.2's


def _boolean(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")


def port_forward(args: argparse.Namespace, client: Client) -> None:
    kubectl.port_forward(port=args.port, namespace=args.namespace)


def _add_deploy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", nargs="?", choices=TARGETS, default="local",
                        help="local: one node, blocks on its disk (default); google, amazon, microsoft: blocks in "
                             "a GCS bucket, an S3 bucket, an Azure blob container")
    parser.add_argument("positionals", nargs="*", metavar="argument",
                        help="v1.2's forms: google BUCKET VOLUME-NAME SIZE-GB; amazon BUCKET ID SECRET TOKEN REGION "
                             "VOLUME-NAME SIZE-GB; microsoft CONTAINER ACCOUNT-NAME ACCOUNT-KEY VOLUME-URI SIZE-GB "
                             "(the same as the flags below)")
    parser.add_argument("-s", "--shards", "--replicas", dest="replicas", type=int, metavar="N",
                        help=f"pachd pods, the Deployment's replicas (v1.2 called it --shards; default "
                             f"{DEFAULTS.replicas})")
    parser.add_argument("--namespace", help=f"the Kubernetes namespace (default {DEFAULTS.namespace})")
    parser.add_argument("--pachd-image", help=f"default {DEFAULTS.pachd_image}")
    parser.add_argument("--job-shim-image", help=f"for pipelines that name no image (default "
                                                 f"{DEFAULTS.job_shim_image})")
    parser.add_argument("--etcd-image", help=f"default {DEFAULTS.etcd_image}")
    parser.add_argument("--image-pull-policy", choices=PULL_POLICIES,
                        help=f"for pachd, etcd and job pods (default {DEFAULTS.image_pull_policy})")
    parser.add_argument("--node-port", type=int,
                        help=f"each node's port for pachd, 0 for any (default {DEFAULT_NODE_PORT})")
    parser.add_argument("-r", "--registry", type=_boolean, nargs="?", const=True, metavar="true|false",
                        help="deploy a Docker registry alongside pachd, for --push-images (default true; "
                             "--registry=false leaves it out)")
    parser.add_argument("--registry-image", help=f"default {DEFAULTS.registry_image}")
    parser.add_argument("--registry-node-port", type=int,
                        help=f"each node's port for the registry, 0 for any (default {DEFAULT_REGISTRY_NODE_PORT})")
    parser.add_argument("-p", "--host-path",
                        help=f"local: the node directory for pachd's and etcd's data (default {DEFAULTS.host_path})")
    parser.add_argument("--bucket", help="google, amazon: the GCS or S3 bucket for blocks (required)")
    parser.add_argument("--disk-name", help=f"google: an existing GCE persistent disk for etcd (default "
                                            f"{DEFAULTS.disk_name})")
    parser.add_argument("--disk-size", type=int, help=f"google, amazon, microsoft: etcd's disk's size in GB "
                                                      f"(default {DEFAULTS.disk_size})")
    parser.add_argument("--access-key-id", help="amazon: the AWS access key ID (default: the pods' IAM role)")
    parser.add_argument("--secret-access-key", help="amazon: its secret key")
    parser.add_argument("--session-token", help="amazon: a session token, for temporary credentials")
    parser.add_argument("--region", help="amazon: the bucket's region, such as us-west-2")
    parser.add_argument("--volume-id", help="amazon: an existing EBS volume for etcd, vol-... (required)")
    parser.add_argument("--s3-endpoint", help="amazon: the URL of an S3-compatible store (MinIO, Ceph) instead of AWS")
    parser.add_argument("--container", help="microsoft: the Azure blob container for blocks (required)")
    parser.add_argument("--account-name", help="microsoft: its storage account (required)")
    parser.add_argument("--account-key", help="microsoft: that account's key, base64 (required)")
    parser.add_argument("--volume-uri", help="microsoft: an existing Azure disk for etcd: a VHD blob's URL or a "
                                             "managed disk's /subscriptions/... ID (required)")
    parser.add_argument("--dry-run", action="store_true",
                        help="accepted for v1.2 scripts; deploy always prints the manifests and creates nothing")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    deploying = add(sub, "deploy", deploy,
                    "Print the Kubernetes manifests of a Pachyderm cluster; create it with "
                    "`pachctl deploy ... | kubectl create -f -`.")
    _add_deploy_flags(deploying)
    forwarding = add(sub, "port-forward", port_forward,
                     "Forward a local port to pachd in the cluster (runs kubectl port-forward until interrupted).")
    forwarding.add_argument("-p", "--port", type=int, default=DEFAULT_NODE_PORT,
                            help=f"the local port (default {DEFAULT_NODE_PORT}, as pachctl expects)")
    forwarding.add_argument("--namespace", default=DEFAULTS.namespace,
                            help=f"pachd's namespace (default {DEFAULTS.namespace})")
