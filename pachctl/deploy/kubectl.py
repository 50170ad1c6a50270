"""Running kubectl: `pachctl port-forward` reaches pachd's Service from here."""

from __future__ import annotations

import shutil
import subprocess

from pachyderm_client.errors import FailedPreconditionError, InvalidArgumentError, PachydermError
from pachctl.deploy.options import PACHD_PORT, DeployOptions, check


def port_forward_command(kubectl: str, *, port: int, namespace: str) -> list[str]:
    """kubectl's arguments to forward local `port` to the pachd Service's port 650."""
    if not 1 <= port <= 65535:
        raise InvalidArgumentError(f"--port {port} is not a TCP port (1-65535)")
    check(DeployOptions(namespace=namespace))
    return [kubectl, "port-forward", "--namespace", namespace, "svc/pachd", f"{port}:{PACHD_PORT}"]


def find_kubectl() -> str:
    """kubectl's path on PATH; FailedPreconditionError when there is none."""
    found = shutil.which("kubectl")
    if found is None:
        raise FailedPreconditionError(
            "kubectl is not on PATH; install it (https://kubernetes.io/docs/tasks/tools/) and point it at the cluster")
    return found


def port_forward(*, port: int, namespace: str) -> None:
    """Forwards until kubectl ends (Ctrl-C); raises PachydermError if it failed."""
    command = port_forward_command(find_kubectl(), port=port, namespace=namespace)
    code = subprocess.run(command, check=False).returncode
    if code != 0:
        raise PachydermError(f"kubectl port-forward exited with status {code}; is pachd deployed in "
                             f"namespace {namespace!r}?")
