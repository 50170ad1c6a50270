"""Running a pod process with its own private /pfs: Linux mount namespaces.

We use util-linux's `unshare` rather than calling unshare(2) ourselves: it is
on every Debian system, costs a few milliseconds, and does exactly the three
things a pod needs:
  --mount --propagation private  a mount table of its own, so the bind of the
                                 pod's directory on /pfs is seen by no one else;
  --pid --fork --mount-proc      a PID namespace: the pod's processes see only
                                 themselves, and killing its init ends them all;
  --kill-child                   if `unshare` itself is killed (SIGKILL from
                                 pachd), the pod's init dies with it.
As root that is all. Without root, `--user --map-root-user` adds a user
namespace (where the kernel allows unprivileged ones); /pfs must then already
exist, since an unprivileged process cannot create it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PFS = Path("/pfs")
# Runs inside the namespaces: bind the pod's directory on /pfs, then become the pod.
_ENTER = 'mount --bind "$0" /pfs && exec "$@"'
# The same, first binding each extra (source, target) pair given as "$1".."$2k".
_ENTER_WITH_BINDS = (
    'pfs="$0"; while [ "$1" != -- ]; do mkdir -p "$2" && mount --bind "$1" "$2" || exit 1; shift 2; done; '
    'shift; mount --bind "$pfs" /pfs && exec "$@"'
)


@dataclass(frozen=True, slots=True)
class NamespaceSupport:
    supported: bool
    message: str  # one line: how pods run, or what they need


def _unshare_args(root: bool) -> list[str]:
    args = ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if not root:
        args[1:1] = ["--user", "--map-root-user"]
    return args


def probe_namespace_support() -> NamespaceSupport:
    """Whether pods can get a private /pfs here; tried for real once."""
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return NamespaceSupport(False, "local pods need util-linux's unshare and mount (apt-get install util-linux)")
    root = os.geteuid() == 0
    if root:
        PFS.mkdir(exist_ok=True)
    elif not PFS.is_dir():
        return NamespaceSupport(False, "local pods without root need an empty /pfs directory (sudo mkdir /pfs)")
    probe = subprocess.run([*_unshare_args(root), "--", "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        need = "root, or unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        return NamespaceSupport(False, f"local pods need {need}: {probe.stderr.strip()}")
    mode = "as root" if root else "in unprivileged user namespaces"
    return NamespaceSupport(True, f"local pods run in private mount namespaces ({mode})")


class PodProcess:
    """A running pod; the process is `unshare`, whose child is the pod's init."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        """The exit code: negative for a signal, as asyncio reports it."""
        return await self._process.wait()

    def kill(self) -> None:
        """Ends the pod and everything it started (the PID namespace goes with it)."""
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def pod_argv(argv: Sequence[str], pfs_dir: Path, binds: Mapping[Path, Path] | None = None) -> list[str]:
    """The command line that runs `argv` in new namespaces, seeing `pfs_dir` at
    /pfs and each host directory of `binds` at its target path."""
    root = os.geteuid() == 0
    if root:
        PFS.mkdir(exist_ok=True)
    if not binds:
        return [*_unshare_args(root), "--", "/bin/sh", "-c", _ENTER, str(pfs_dir.resolve()), *argv]
    pairs = [str(path) for source, target in binds.items() for path in (source.resolve(), target)]
    return [*_unshare_args(root), "--", "/bin/sh", "-c", _ENTER_WITH_BINDS, str(pfs_dir.resolve()), *pairs, "--", *argv]


async def spawn_pod(
    *, argv: Sequence[str], env: Mapping[str, str], pfs_dir: Path, log_path: Path, cwd: Path | None = None
) -> PodProcess:
    """Starts `argv` with exactly `env`, seeing `pfs_dir` at /pfs; output appends to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab", buffering=0) as log:
        process = await asyncio.create_subprocess_exec(
            *pod_argv(argv, pfs_dir),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
            cwd=str(cwd) if cwd else None, start_new_session=True,
        )
    logger.debug("pod started: pid %d, %s", process.pid, " ".join(argv))
    return PodProcess(process)
