"""A local pod's /pfs/out and /pfs/prev mounted over its pipeline's laid-out output.

A job with a parent starts each pod's /pfs/out as the parent's output and shows
that output at /pfs/prev. Instead of the pod writing it there file by file, pachd
(root) mounts, in the pod's /pfs folder on the host:
    out    an overlay: the laid-out output below (never written), the pod's own
           `changes` folder above, which receives whatever the pod's code writes
           or removes (a removal as a whiteout);
    prev   the laid-out output, through an overlay with no folder to write to: read-only
           in the file system itself, so in every copy of the mount (a bind's
           read-only flag would not reach the pod's copy).
Each pod's /pfs folder is first made a shared mount of its own (prepare()), so what
pachd mounts in it reaches the pod even once the pod runs: a warm pod, started
before its job was known, gets its mounts before its assignment. The pod's layers
folder is bound read-only at LAYERS, where the shim reads `changes` to send back
only what the code changed (shim/layout.py). The pod has no capability to undo
the mounts; release() detaches them when the pod ends. All of them are made in
pachd's own mount namespace (keep_mounts_private), so they also end with a
pachd that is killed; where that namespace could not be had, a restarted pachd
detaches any a killed one left (unmount_below).

A pachd that is not root cannot mount on the host, but its pods' namespaces are
its user's (bubblewrap made them): mount_in_pod mounts the same two overlays inside
a running pod's own mount namespace (podmount.py), where they end with the pod. It
needs the pod running first: the pod waits for its job meanwhile (a warm pod, or one
started to wait alike: local.py).
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
from pathlib import Path

from pachyderm_client._glibc import (CLONE_NEWNS, MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REC, MS_SHARED,
                                     MS_SLAVE, mount, unmount, unshare)

LAYERS = Path("/run/pfs-layers")  # inside the pod: its layers folder, read-only (not below /run/pachd: pachd's socket)
CHANGES = LAYERS / "changes"
UNSAFE_IN_OPTIONS = (",", ":", "\\", "\n")  # overlay's option syntax cannot carry these in a folder's name
IN_POD_KERNEL = (5, 11)  # the first Linux to mount an overlay in a user namespace
PODMOUNT = Path(__file__).with_name("podmount.py")
PODMOUNT_TIMEOUT = 30.0


def layers_of(pfs_dir: Path) -> Path:
    """A pod's layers folder: beside its /pfs folder, so a warm pod's directory carries both."""
    return pfs_dir.parent / "layers"


def in_pods() -> bool:
    """Whether pods' outputs are mounted in their own namespaces (pachd is not root), not on the host."""
    return os.geteuid() != 0


def keep_mounts_private() -> str:
    """Moves pachd (root) into a mount namespace of its own, where the host's mounts still reach it
    but its pods' do not leave it: they end with pachd and its pods, even when pachd is killed and
    never started again. Called first thing, while pachd has one thread (unshare needs that).
    Returns why it could not ("" when it did): pachd then mounts in the host's namespace."""
    if in_pods():
        return ""
    try:
        unshare(CLONE_NEWNS)
        mount("none", "/", None, MS_REC | MS_SLAVE)
    except OSError as err:
        return f"pods' mounts stay in the host's mount namespace: {err}"
    return ""


def problem(root: Path) -> str:
    """Why pods' outputs cannot be mounted here ("" when they can)."""
    if in_pods() and _kernel() < IN_POD_KERNEL:
        return "mounting a pod's layers takes root, or Linux 5.11 or later"
    if any(c in str(root.resolve()) for c in UNSAFE_IN_OPTIONS):
        return f"{root} has a character overlay's options cannot hold"
    try:
        with open("/proc/filesystems") as known:
            if not any(line.split()[-1:] == ["overlay"] for line in known):
                return "this kernel has no overlay file system"
    except OSError as err:
        return f"cannot read /proc/filesystems: {err}"
    return ""


def _kernel() -> tuple[int, ...]:
    release = re.match(r"(\d+)\.(\d+)", os.uname().release)
    return (int(release[1]), int(release[2])) if release else (0, 0)


def prepare(pfs_dir: Path) -> None:
    """Makes the pod's /pfs folder and its layers folder before the pod starts; as root, makes
    /pfs a shared mount of its own (what pachd mounts there later reaches the pod)."""
    pfs_dir.mkdir(parents=True, exist_ok=True)
    layers_of(pfs_dir).mkdir(exist_ok=True)
    if in_pods():
        return
    mount(str(pfs_dir), str(pfs_dir), None, MS_BIND)
    try:
        mount("none", str(pfs_dir), None, MS_SHARED)
    except OSError:
        unmount(str(pfs_dir))
        raise


def _folders(pfs_dir: Path) -> tuple[Path, Path, Path, Path, Path]:
    """The pod's out and prev, and its layers' changes, work and empty folders, made if missing."""
    layers = layers_of(pfs_dir)
    folders = (pfs_dir / "out", pfs_dir / "prev", layers / "changes", layers / "work", layers / "empty")
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return folders


def mount_output(pfs_dir: Path, tree: Path, owner: tuple[int, int] | None) -> None:
    """Mounts `tree` in the (shared) `pfs_dir` as the pod's out (below its changes) and prev (read-only)."""
    out, prev, changes, work, empty = _folders(pfs_dir)
    if owner is not None:
        os.chown(changes, *owner)  # the folder above is what /pfs/out's own attributes come from
    lower = tree.resolve()
    # redirect_dir=off: a folder moved is copied up whole (a redirect would leave its files below,
    # where the shim's look at `changes` cannot tell them from the base's); metacopy=off likewise.
    mount("overlay", str(out), "overlay", MS_NOSUID | MS_NODEV,
          f"lowerdir={lower},upperdir={changes.resolve()},workdir={work.resolve()},redirect_dir=off,metacopy=off")
    try:  # overlay wants two lower folders where it has no upper one: the second is empty
        mount("overlay", str(prev), "overlay", MS_RDONLY | MS_NOSUID | MS_NODEV, f"lowerdir={lower}:{empty.resolve()}")
    except OSError:
        unmount(str(out))
        raise


def mount_in_pod(pod_pid: int, pfs_dir: Path, tree: Path) -> None:
    """As mount_output, inside the running pod's own mount namespace (`pod_pid`: its sandbox's
    outer process), for a pachd that is not root: the pod's user is pachd's own."""
    _, _, changes, work, empty = _folders(pfs_dir)
    if any(c in str(p.resolve()) for p in (tree, changes) for c in ("\t", "\n")):
        raise OSError(f"{pfs_dir} has a character podmount's requests cannot hold")
    _podmount.ask("\t".join([str(pod_pid), *(str(p.resolve()) for p in (tree, changes, work, empty))]))


class _PodMount:
    """pachd's one podmount.py program (started when first needed, again if it ended), asked one
    pod at a time from the executor's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None

    def ask(self, request: str) -> None:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(PODMOUNT), "--serve"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            process = self._process
            assert process.stdin is not None and process.stdout is not None
            try:
                process.stdin.write(request + "\n")
                process.stdin.flush()
                answered, _, _ = select.select([process.stdout], [], [], PODMOUNT_TIMEOUT)
                answer = process.stdout.readline().strip() if answered else ""
            except OSError as err:
                answer = f"podmount: {err}"
            if not answer or process.poll() is not None:
                process.kill()  # stuck, or ended: the next pod starts another
                process.wait()
                self._process = None
            if answer != "ok":
                raise OSError(answer or f"podmount gave no answer in {PODMOUNT_TIMEOUT:.0f} s")


_podmount = _PodMount()


def release(pod_dir: Path) -> int:
    """Detaches every mount in the pod's directory (its /pfs folder's own, out, prev), and lets
    its overlay's work folder be removed; returns how many mounts it detached (none without root:
    its mounts were in the pod's namespaces, gone with it)."""
    detached = 0 if in_pods() else unmount_below(pod_dir)
    open_work(pod_dir)
    return detached


def open_work(pod_dir: Path) -> None:
    """The overlay leaves a folder of mode 0 in its work folder: only root could remove it as it is."""
    try:
        os.chmod(layers_of(pod_dir / "pfs") / "work" / "work", 0o700)
    except OSError:
        pass


def unmount_below(root: Path) -> int:
    """Detaches every mount below `root` (a pod's, or all that a killed pachd left); returns how many.

    Deepest first, and again until none is left: detaching a mount may uncover one it covered."""
    base = f"{root.resolve()}/"
    detached = 0
    for _ in range(8):
        left = sorted((p for p in _mount_points() if p.startswith(base)), key=len, reverse=True)
        if not left:
            break
        for target in left:
            try:
                unmount(target)
                detached += 1
            except OSError:
                pass
    return detached


def _mount_points() -> set[str]:
    try:
        with open("/proc/self/mountinfo", "rb") as info:
            lines = info.read().splitlines()
    except OSError:
        return set()
    # The fifth field, with spaces and the like written as octal escapes.
    return {_unescape(fields[4]) for fields in map(bytes.split, lines) if len(fields) > 4}


def _unescape(field: bytes) -> str:
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), field).decode(errors="surrogateescape")
