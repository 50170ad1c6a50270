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
Each pod's /pfs folder is first made a shared mount of its own (share()), so what
pachd mounts in it reaches the pod even once the pod runs: a warm pod, started
before its job was known, gets its mounts before its assignment. The pod's layers
folder is bound read-only at LAYERS, where the shim reads `changes` to send back
only what the code changed (shim/layout.py). The pod has no capability to undo
the mounts; release() detaches them when the pod ends, and a restarted pachd
detaches any a killed one left (unmount_below).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pachyderm_client._glibc import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_SHARED, mount, unmount

LAYERS = Path("/run/pfs-layers")  # inside the pod: its layers folder, read-only (not below /run/pachd: pachd's socket)
CHANGES = LAYERS / "changes"
UNSAFE_IN_OPTIONS = (",", ":", "\\", "\n")  # overlay's option syntax cannot carry these in a folder's name


def layers_of(pfs_dir: Path) -> Path:
    """A pod's layers folder: beside its /pfs folder, so a warm pod's directory carries both."""
    return pfs_dir.parent / "layers"


def problem(root: Path) -> str:
    """Why pods' outputs cannot be mounted here ("" when they can)."""
    if os.geteuid() != 0:
        return "mounting a pod's layers takes root"
    if any(c in str(root.resolve()) for c in UNSAFE_IN_OPTIONS):
        return f"{root} has a character overlay's options cannot hold"
    try:
        with open("/proc/filesystems") as known:
            if not any(line.split()[-1:] == ["overlay"] for line in known):
                return "this kernel has no overlay file system"
    except OSError as err:
        return f"cannot read /proc/filesystems: {err}"
    return ""


def share(pfs_dir: Path) -> None:
    """Makes the pod's /pfs folder a shared mount of its own, and its layers folder, before the pod starts."""
    pfs_dir.mkdir(parents=True, exist_ok=True)
    layers_of(pfs_dir).mkdir(exist_ok=True)
    mount(str(pfs_dir), str(pfs_dir), None, MS_BIND)
    try:
        mount("none", str(pfs_dir), None, MS_SHARED)
    except OSError:
        unmount(str(pfs_dir))
        raise


def mount_output(pfs_dir: Path, tree: Path, owner: tuple[int, int] | None) -> None:
    """Mounts `tree` in the (shared) `pfs_dir` as the pod's out (below its changes) and prev (read-only)."""
    out, prev, layers = pfs_dir / "out", pfs_dir / "prev", layers_of(pfs_dir)
    changes, work, empty = layers / "changes", layers / "work", layers / "empty"
    for folder in (out, prev, changes, work, empty):
        folder.mkdir(parents=True, exist_ok=True)
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


def release(pod_dir: Path) -> int:
    """Detaches every mount in the pod's directory (its /pfs folder's own, out, prev)."""
    return unmount_below(pod_dir)


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
