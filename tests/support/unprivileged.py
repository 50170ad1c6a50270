"""Running a program as an unprivileged user (pachd as a user runs it on a workstation), from tests run as root.

The user must reach the Python it runs on, its packages and this checkout, which may lie
below folders only root can enter (a Python installed under /root). The program runs in a
private mount namespace where each such folder is shown through an overlay whose copy of
the folder lets others in: the host's folder and its mode are left as they are, and the
program still runs as the user alone (no capability: setpriv drops them before it starts).
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

NOBODY = (65534, 65534)


def closed_folders(paths: Sequence[Path], user: tuple[int, int]) -> list[Path]:
    """The folders above (or at) `paths` that `user` may not enter, outermost first."""
    closed: list[Path] = []
    for path in paths:
        real = path.resolve()
        for folder in [*reversed(real.parents), real]:
            if folder.is_dir() and not _enters(os.stat(folder), user) and folder not in closed:
                closed.append(folder)
    return sorted(closed, key=lambda p: len(p.parts))


def _enters(info: os.stat_result, user: tuple[int, int]) -> bool:
    if info.st_uid == user[0]:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == user[1]:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def as_user(argv: Sequence[str], user: tuple[int, int], scratch: Path, reach: Sequence[Path]) -> list[str]:
    """`argv` run as `user` (uid, gid), able to enter every folder on the way to `reach` (and this
    Python's); `scratch` (root's, outside them) holds the overlays' own folders."""
    python = [Path(sys.executable), Path(sys.prefix), Path(sys.base_prefix), *reach]
    steps = []
    for n, folder in enumerate(closed_folders(python, user)):
        upper, work = scratch / f"upper{n}", scratch / f"work{n}"
        upper.mkdir(parents=True, exist_ok=True)
        work.mkdir(parents=True, exist_ok=True)
        quoted = shlex.quote(str(folder))
        steps.append(f"mount -t overlay overlay -o lowerdir={quoted},upperdir={shlex.quote(str(upper))},"
                     f"workdir={shlex.quote(str(work))} {quoted} && chmod o+x {quoted}")
    uid, gid = user
    steps.append(f'exec setpriv --reuid={uid} --regid={gid} --clear-groups --inh-caps=-all --bounding-set=-all -- "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-ec", " && ".join(steps), "sh", *argv]
