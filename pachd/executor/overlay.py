"""A local pod's /pfs/out and /pfs/prev mounted over its pipeline's laid-out output.

A job with a parent starts each pod's /pfs/out as the parent's output and shows
that output at /pfs/prev. Instead of the pod writing it there file by file, pachd
(root) mounts, in the pod's /pfs folder before the pod starts (bwrap binds /pfs
with what is mounted below it):
    out    an overlay: the laid-out output below (never written), the pod's own
           `changes` folder above, which receives whatever the pod's code writes
           or removes (a removal as a whiteout);
    prev   the laid-out output itself, read-only.
The shim reads `changes` (bound read-only at CHANGES) to send back only what the
code changed (shim/layout.py). The pod has no capability to undo the mounts; they
are detached when the pod ends, and a restarted pachd detaches any left behind.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from pachyderm_client._glibc import MS_BIND, MS_NODEV, MS_NOSUID, MS_RDONLY, MS_REMOUNT, mount, unmount

CHANGES = Path("/run/pachd/out-changes")  # inside the pod: the overlay's upper folder, read-only
UNSAFE_IN_OPTIONS = (",", ":", "\\", "\n")  # overlay's option syntax cannot carry these in a folder's name


@dataclass(frozen=True, slots=True)
class Layers:
    """Where one pod's overlay keeps its own folders (beside its /pfs folder)."""

    folder: Path

    @property
    def changes(self) -> Path:
        return self.folder / "changes"

    @property
    def work(self) -> Path:
        return self.folder / "work"


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


def mount_output(pfs_dir: Path, tree: Path, layers: Layers, owner: tuple[int, int] | None) -> None:
    """Mounts `tree` in `pfs_dir` as the pod's out (below its changes) and prev (read-only)."""
    out, prev = pfs_dir / "out", pfs_dir / "prev"
    for folder in (out, prev, layers.changes, layers.work):
        folder.mkdir(parents=True, exist_ok=True)
    if owner is not None:
        os.chown(layers.changes, *owner)  # the folder above is what /pfs/out's own attributes come from
    options = f"lowerdir={tree.resolve()},upperdir={layers.changes.resolve()},workdir={layers.work.resolve()}"
    mount("overlay", str(out), "overlay", MS_NOSUID | MS_NODEV, options)
    try:
        mount(str(tree), str(prev), None, MS_BIND)
        mount("none", str(prev), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    except OSError:
        unmount_output(pfs_dir)
        raise


def unmount_output(pfs_dir: Path) -> None:
    """Detaches the pod's out and prev, where mounted (the pod's own view goes with it)."""
    for name in ("out", "prev"):
        target = str(pfs_dir / name)
        if is_mounted(target):
            unmount(target)


def is_mounted(target: str) -> bool:
    return target in _mount_points()


def unmount_below(root: Path) -> int:
    """Detaches every mount below `root` (those a killed pachd left); returns how many."""
    base = f"{root.resolve()}/"
    left = sorted((p for p in _mount_points() if p.startswith(base)), key=len, reverse=True)
    for target in left:
        try:
            unmount(target)
        except OSError:
            pass
    return len(left)


def _mount_points() -> set[str]:
    try:
        with open("/proc/self/mountinfo", "rb") as info:
            lines = info.read().splitlines()
    except OSError:
        return set()
    # The fifth field, with spaces and the like written as octal escapes.
    return {_unescape(line.split()[4]) for line in lines if len(line.split()) > 4}


def _unescape(field: bytes) -> str:
    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), field).decode(errors="surrogateescape")
