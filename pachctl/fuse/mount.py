"""Mounting and unmounting; what FUSE needs here.

A mount shows in /proc/mounts as filesystem type "fuse.pfs", which is how
`unmount -a` finds ours.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pyfuse3
import pyfuse3.asyncio

from pachyderm_client import Client
from pachctl.fuse.filesystem import PfsOperations
from pachyderm_client.proto import fuse_pb2, pfs_pb2

logger = logging.getLogger(__name__)

FSTYPE = "fuse.pfs"


def fuse_problem() -> str | None:
    """Why FUSE cannot be used here, in one line; None if it can."""
    if not os.path.exists("/dev/fuse"):
        return "FUSE is not available: /dev/fuse is missing (load the fuse module, or run with --device /dev/fuse)"
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        return "FUSE needs fusermount3 for non-root users (apt-get install fuse3)"
    return None


async def serve(client: Client, mountpoint: Path, *, mounts: Sequence[fuse_pb2.CommitMount] = (),
                all_commits: bool = False, shard: pfs_pb2.Shard | None = None, debug: bool = False,
                ready: asyncio.Event | None = None) -> None:
    """Serves the filesystem at `mountpoint` until it is unmounted or terminate() is called."""
    pyfuse3.asyncio.enable()
    operations = PfsOperations(client, mounts=mounts, all_commits=all_commits, shard=shard)
    options = set(pyfuse3.default_options) | {"fsname=pachyderm", "subtype=pfs"}
    if debug:
        options.add("debug")
    pyfuse3.init(operations, str(mountpoint), options)
    try:
        if ready is not None:
            ready.set()
        await pyfuse3.main()
    finally:
        pyfuse3.close(unmount=True)


def terminate() -> None:
    """Makes serve() return (and unmount)."""
    pyfuse3.terminate()


def mount(client: Client, mountpoint: Path, **options: object) -> None:
    """Mounts and blocks until unmounted (or interrupted)."""

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, terminate)
        await serve(client, mountpoint, **options)  # type: ignore[arg-type]

    asyncio.run(run())


def our_mounts() -> list[str]:
    """Mount points of PFS filesystems (ours, and any other pachctl's)."""
    found = []
    with open("/proc/mounts") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 2 and fields[2] == FSTYPE:
                found.append(fields[1].encode().decode("unicode_escape"))
    return found


def unmount(mountpoint: str) -> None:
    """Unmounts at once, even while readers wait on the mount: the mount is
    detached lazily and its FUSE connection aborted, so they get an error
    (ENOTCONN) instead of hanging on a pachd that may not answer."""
    connection = _connection(mountpoint)
    if os.geteuid() == 0:
        command = ["umount", "-l", mountpoint]
    else:
        command = ["fusermount3", "-u", "-z", mountpoint]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise OSError(f"cannot unmount {mountpoint}: {result.stderr.strip() or result.returncode}")
    if connection is not None:
        _abort(connection)


def _abort(connection: str) -> None:
    """Ends a FUSE connection's pending requests (through fusectl, mounted if need be)."""
    control = Path("/sys/fs/fuse/connections")
    if not (control / connection).exists() and os.geteuid() == 0:
        subprocess.run(["mount", "-t", "fusectl", "none", str(control)], capture_output=True)
    try:
        (control / connection / "abort").write_text("1")
    except OSError:
        pass  # already gone, or no fusectl here: the daemon ends the session itself


def _connection(mountpoint: str) -> str | None:
    """The FUSE connection number of a mount (its device minor), read without touching the mount."""
    target = os.path.abspath(mountpoint)
    with open("/proc/self/mountinfo") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 4 and fields[4] == target and " - fuse" in line:
                return fields[2].split(":")[1]
    return None
