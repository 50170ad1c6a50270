"""deploy and port-forward: running Pachyderm on Kubernetes.

`pachctl deploy [local|google]` prints the cluster's manifests (pipe them into
`kubectl create -f -`); `pachctl port-forward` makes pachd reachable here.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

from pachctl.cli.common import add
from pachctl.client import Client, InvalidArgumentError
from pachctl.deploy import DEFAULTS, PULL_POLICIES, TARGETS, DeployOptions, kubectl, manifest
from pachctl.deploy.options import DEFAULT_NODE_PORT, DEFAULT_REGISTRY_NODE_PORT, flag

# v1.2's form: `pachctl deploy google <bucket> <volume-name> <volume-size-in-GB>`.
_GOOGLE_POSITIONALS = ("bucket", "disk_name", "disk_size")


def deploy(args: argparse.Namespace, client: Client) -> None:
    sys.stdout.write(manifest(DeployOptions(**_options(args))))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {field.name: getattr(args, field.name) for field in dataclasses.fields(DeployOptions)
              if getattr(args, field.name) is not None}
    if not args.google_args:
        return chosen
    if args.target != "google" or len(args.google_args) > len(_GOOGLE_POSITIONALS):
        raise InvalidArgumentError("extra arguments; only `deploy google` takes <bucket> <disk-name> <disk-size-GB>")
    for name, text in zip(_GOOGLE_POSITIONALS, args.google_args):
        if name in chosen:
            raise InvalidArgumentError(f"{flag(name)} is given twice, as a flag and as an argument")
        chosen[name] = _integer(text, "disk-size") if name == "disk_size" else text
    return chosen


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidArgumentError(f"{what} must be a whole number, not {text!r}") from None


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
                        help="local: one node, blocks on its disk (default); google: blocks in a GCS bucket")
    parser.add_argument("google_args", nargs="*", metavar="bucket disk-name disk-size",
                        help="v1.2's form of --bucket, --disk-name and --disk-size for google")
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
    parser.add_argument("--bucket", help="google: the GCS bucket for blocks (required)")
    parser.add_argument("--disk-name", help=f"google: an existing GCE persistent disk for etcd (default "
                                            f"{DEFAULTS.disk_name})")
    parser.add_argument("--disk-size", type=int, help=f"google: that disk's size in GB (default {DEFAULTS.disk_size})")
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
