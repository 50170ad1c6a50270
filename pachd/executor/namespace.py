"""Running a pod process confined like a container: bubblewrap (`bwrap`).

A confined pod runs as an unprivileged user (`nobody` unless told otherwise)
in its own mount, PID, IPC and UTS namespaces, and sees:
  /pfs           its own directory (read-write): its inputs and `out`;
  /usr, /bin, /lib*, /etc   the system's programs and libraries, read-only,
                 with the host's password hashes, sudoers and SSH keys hidden;
  the Python runtime the job shim runs on (its prefix and packages), read-only;
  a private /tmp, /dev (null, zero, random, tty) and /proc;
  /run/pachd     pachd's certificate (TLS) or its socket (no network), when needed.
Nothing else: not pachd's data dir, blocks, metadata, key or token files, not
other pods, not the home directories. The network is the host's unless the
sandbox is made with network="none" (then pods reach pachd through a Unix
socket bound at /run/pachd/pachd.sock).

bwrap runs as pachd's user and builds the pod's file system; when that is
root, the pod's first program is `setpriv`, which becomes the pod's user and
drops every capability (bwrap has already set no_new_privs, so no setuid
program gives them back) before it runs the job shim. A FUSE pod instead
keeps root and CAP_SYS_ADMIN alone (mounting FUSE needs them; every other
capability is dropped), with /dev/fuse: it sees the same file system, but
could undo its own mounts, so it is less confined than a copy-mode pod.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pachd.executor import overlay

logger = logging.getLogger(__name__)

PFS = Path("/pfs")
RUN = Path("/run/pachd")  # inside the sandbox: pachd's certificate and socket
NOBODY = 65534
# The system's programs and libraries; symlinks among them (merged /usr) are kept as symlinks.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
# Host secrets under /etc that a pod never sees (each replaced by an empty file or directory).
HIDDEN_IN_ETC = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
                 "/etc/sudoers.d", "/etc/ssh", "/etc/ssl/private", "/etc/security/opasswd", "/etc/machine-id")


@dataclass(frozen=True, slots=True)
class NamespaceSupport:
    supported: bool
    message: str  # one line: how pods run, or what they need


@dataclass(frozen=True, slots=True)
class Sandbox:
    """How confined pods are made: who they run as, what they see besides the system."""

    uid: int = NOBODY
    gid: int = NOBODY
    network: str = "host"  # "host" or "none"
    runtime: tuple[Path, ...] = ()  # read-only extra trees (the shim's Python and packages)
    hidden: tuple[Path, ...] = ()  # pachd's own files, hidden wherever a bound tree holds them
    ca_file: Path | None = None  # pachd's certificate, shown at /run/pachd/ca.pem
    socket_dir: Path | None = None  # holds pachd.sock, shown at /run/pachd (network "none")
    fuse: bool = False  # /dev/fuse inside, and the rights to mount it (in the pod's own namespaces)
    layers: bool = False  # the pod's layers folder shown read-only (its previous output may be mounted: overlay.py)
    extra_binds: Mapping[Path, Path] = field(default_factory=dict)  # host dir -> read-only target


def _drop_privileges(sandbox: Sandbox) -> list[str]:
    """What the pod runs first: setpriv becoming the pod's user without any
    capability, when pachd is root (else bwrap runs it as pachd's own user)."""
    if os.geteuid() != 0 or sandbox.fuse:
        return []
    return ["setpriv", f"--reuid={sandbox.uid}", f"--regid={sandbox.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"]


def _capabilities(sandbox: Sandbox) -> list[str]:
    if os.geteuid() != 0:
        return []
    if sandbox.fuse:
        return ["--cap-add", "CAP_SYS_ADMIN"]
    return ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]


def _under(path: Path, tree: Path) -> bool:
    """Whether `path` is `tree` or lies below it (both absolute; by their text: this runs for
    every pair of bound trees and hidden paths at each pod's start, on pachd's event loop)."""
    inner, outer = str(path), str(tree)
    return inner == outer or inner.startswith(outer if outer.endswith("/") else outer + "/")


def _system_args() -> list[str]:
    args: list[str] = []
    for name in SYSTEM_DIRS:
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.is_dir():
            args += ["--ro-bind", name, name]
    return args


def _tree_args(trees: Sequence[Path]) -> list[str]:
    """Read-only binds of `trees`, their parents made traversable (bwrap copies a parent's mode)."""
    args: list[str] = []
    made: set[Path] = set()
    for tree in trees:
        for parent in reversed(tree.parents):
            if parent != Path("/") and parent not in made and not any(_under(parent, t) for t in trees if t != tree):
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(tree), str(tree)]
    return args


def _hide_args(paths: Sequence[Path], trees: Sequence[Path]) -> list[str]:
    """Covers each path that one of the bound trees would show."""
    args: list[str] = []
    for path in paths:
        if not any(_under(path, tree) for tree in trees) or not path.exists():
            continue
        args += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
    return args


def sandbox_argv(sandbox: Sandbox, argv: Sequence[str], pfs_dir: Path) -> list[str]:
    """The command line that runs `argv` confined, seeing `pfs_dir` at /pfs."""
    args = ["bwrap", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "pod", "--die-with-parent", *_capabilities(sandbox)]
    if os.geteuid() != 0:
        args += ["--unshare-user"]
    if sandbox.network == "none":
        args.append("--unshare-net")
    args += _system_args()
    runtime = sorted({p.resolve() for p in sandbox.runtime if p.exists()})
    runtime = [p for p in runtime if not any(t != p and _under(p, t) for t in runtime)]
    args += _tree_args(runtime)
    trees = [Path(d) for d in SYSTEM_DIRS] + runtime
    args += _hide_args([Path(p) for p in HIDDEN_IN_ETC], trees)
    args += _hide_args([p.resolve() for p in sandbox.hidden], trees)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run", "--dir", str(RUN)]
    if sandbox.fuse:
        args += ["--dev-bind", "/dev/fuse", "/dev/fuse"]
    if sandbox.ca_file is not None:
        args += ["--ro-bind", str(sandbox.ca_file.resolve()), str(RUN / "ca.pem")]
    if sandbox.socket_dir is not None:
        args += ["--bind", str(sandbox.socket_dir.resolve()), str(RUN)]
    for source, target in sandbox.extra_binds.items():
        for parent in reversed(target.parents[:-1]):  # bwrap would make missing ones 0700: unreadable to the pod
            args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", str(source.resolve()), str(target)]
    if sandbox.layers:
        args += ["--ro-bind-try", str(overlay.layers_of(pfs_dir).resolve()), str(overlay.LAYERS)]
    args += ["--bind", str(pfs_dir.resolve()), str(PFS), "--chdir", str(PFS), "--"]
    return [*args, *_drop_privileges(sandbox), *argv]


def probe(sandbox: Sandbox) -> NamespaceSupport:
    """Whether pods can be confined here; tried for real once."""
    missing = [tool for tool in ("bwrap", "setpriv") if shutil.which(tool) is None]
    if missing:
        return NamespaceSupport(False, f"local pods need {' and '.join(missing)} to be confined "
                                       "(apt-get install bubblewrap util-linux)")
    with tempfile.TemporaryDirectory(prefix="pachd-probe-") as scratch:
        prepare_pfs(Path(scratch), sandbox)
        argv = sandbox_argv(sandbox, ["/bin/sh", "-c", "test -w /pfs && test ! -s /etc/shadow"], Path(scratch))
        try:
            run = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as err:
            run = subprocess.CompletedProcess(argv, 1, "", str(err))
    if run.returncode != 0:
        need = "root, or unprivileged user namespaces (sysctl user.max_user_namespaces > 0)"
        detail = (run.stderr.strip().splitlines() or ["the test pod failed"])[-1]
        return NamespaceSupport(False, f"local pods cannot be confined here: bubblewrap needs {need}: {detail}")
    who = "root with CAP_SYS_ADMIN only (FUSE)" if sandbox.fuse else f"uid {sandbox.uid}"
    network = "no network" if sandbox.network == "none" else "the host's network"
    return NamespaceSupport(True, f"local pods run confined by bubblewrap as {who}, with {network}")


class PodProcess:
    """A running pod; the process is the sandbox's outer process, whose child is the pod's init."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._ended: asyncio.Future[int] | None = None

    @property
    def pid(self) -> int:
        return self._process.pid

    async def wait(self) -> int:
        """The exit code: negative for a signal, as asyncio reports it. Any number may wait."""
        if self._ended is None:
            self._ended = self._watch_exit()
        return await asyncio.shield(self._ended)

    def _watch_exit(self) -> asyncio.Future[int]:
        """A future set when the process ends, from its pidfd becoming readable (no thread waits)."""
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[int] = loop.create_future()
        if self._process.poll() is not None:
            ended.set_result(self._process.returncode)
            return ended
        pidfd = os.pidfd_open(self._process.pid)

        def exited() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            ended.set_result(self._process.wait())  # it has ended: this only reaps it

        loop.add_reader(pidfd, exited)
        return ended

    def kill(self) -> None:
        """Ends the pod and everything it started (the PID namespace goes with it)."""
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot: with the PID, a unique identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def pod_argv(argv: Sequence[str], pfs_dir: Path, binds: Mapping[Path, Path] | None = None) -> list[str]:
    """A private /pfs and nothing more: the host's whole file system with `pfs_dir`
    at /pfs and each host directory of `binds` at its target path, in a PID
    namespace of its own. This is how a container runtime's pod is played by
    the test fakes of Kubernetes and Docker (they confine nothing themselves)."""
    args = ["bwrap", "--dev-bind", "/", "/", "--unshare-pid", "--die-with-parent", "--proc", "/proc"]
    for source, target in (binds or {}).items():
        args += ["--bind", str(source.resolve()), str(target)]
    return [*args, "--bind", str(pfs_dir.resolve()), str(PFS), "--", *argv]


def prepare_pfs(pfs_dir: Path, sandbox: Sandbox) -> None:
    """Makes the pod's /pfs directory its user's to write (pachd may be root)."""
    pfs_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        os.chown(pfs_dir, sandbox.uid, sandbox.gid)


async def spawn_pod(
    *, argv: Sequence[str], env: Mapping[str, str], pfs_dir: Path, log_path: Path, sandbox: Sandbox | None = None,
    stdin: int = subprocess.DEVNULL,
) -> PodProcess:
    """Starts `argv` confined by `sandbox` (default: nobody, the host's network),
    with exactly `env`, seeing `pfs_dir` at /pfs; output appends to `log_path`;
    stdin reads nothing unless given (a warm pod's socket to pachd: warm.py).

    Started from a thread: forking pachd and waiting for the child's exec, with
    the sandbox's command line built first, would hold pachd's event loop (and
    every job's calls) for milliseconds per pod, more on a busy machine."""
    sandbox = sandbox or Sandbox()

    def start() -> subprocess.Popen[bytes]:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        prepare_pfs(pfs_dir, sandbox)
        with open(log_path, "ab", buffering=0) as log:
            return subprocess.Popen(sandbox_argv(sandbox, argv, pfs_dir), stdin=stdin, stdout=log,
                                    stderr=subprocess.STDOUT, env=dict(env), start_new_session=True)

    starting = asyncio.ensure_future(asyncio.to_thread(start))
    try:
        process = await asyncio.shield(starting)
    except asyncio.CancelledError:
        starting.add_done_callback(_kill_unwanted)  # its caller left: the pod must not run on
        raise
    logger.debug("pod started: pid %d, %s", process.pid, " ".join(argv))
    return PodProcess(process)


async def remove_pod_files(directory: Path) -> None:
    """Removes a pod's directory from a process of its own at the lowest CPU priority.

    Unlinking a pod's files is the kernel's work (about 0.1 s of CPU for the 20,000 files of a
    job over 10,000): done from a thread of pachd, it took pachd's CPU and GIL from the calls of
    the job's other pods; at nice 19 it takes what they leave."""
    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(["nice", "-n", "19", "rm", "-rf", "--one-file-system", "--", str(directory)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        remover = await asyncio.to_thread(start)
    except OSError:  # no rm here: pachd removes them itself
        await asyncio.to_thread(shutil.rmtree, directory, True)
        return
    await PodProcess(remover).wait()


def _kill_unwanted(started: asyncio.Future[subprocess.Popen[bytes]]) -> None:
    if not started.cancelled() and started.exception() is None:
        PodProcess(started.result()).kill()  # reaped by the subprocess module's own clean-up
