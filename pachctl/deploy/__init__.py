"""`pachctl deploy`'s library: Kubernetes manifests for a Pachyderm cluster.

    from pachctl.deploy import DeployOptions, manifest
    print(manifest(DeployOptions(target="google", bucket="my-bucket")))

options.py holds the choices and their checks, manifests.py builds the
objects as dicts, render.py turns them into one YAML stream, and kubectl.py
runs `kubectl port-forward`.
"""

from __future__ import annotations

from pachctl.deploy.manifests import objects
from pachctl.deploy.options import DEFAULTS, PULL_POLICIES, TARGETS, VERSION_TAG, DeployOptions, command_line
from pachctl.deploy.render import render


def manifest(options: DeployOptions) -> str:
    """The whole deployment as one YAML stream, headed by the command that makes it."""
    made = objects(options)
    command = command_line(options)
    header = [
        f"Pachyderm {VERSION_TAG} on Kubernetes, as printed by `{command}`.",
        f"Create it with: {command} | kubectl create -f -",
    ]
    return render(made, header)


__all__ = ["DEFAULTS", "PULL_POLICIES", "TARGETS", "DeployOptions", "command_line", "manifest", "objects", "render"]
