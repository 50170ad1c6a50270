"""mount and unmount."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pachctl.cli.common import add, add_shard_flags, shard
from pachyderm_client import Client, InvalidArgumentError

READY_POLL_SECONDS = 0.05


def mount(args: argparse.Namespace, client: Client) -> None:
    from pachctl.fuse import mount as fuse

    problem = fuse.fuse_problem()
    if problem:
        raise InvalidArgumentError(problem)
    mountpoint = Path(args.mountpoint)
    if not mountpoint.is_dir():
        raise InvalidArgumentError(f"{mountpoint} is not a directory; create it first")
    watcher = threading.Thread(target=_say_when_mounted, args=(fuse.our_mounts, str(mountpoint.resolve())),
                               daemon=True)
    watcher.start()
    fuse.mount(client, mountpoint, all_commits=args.all_commits, shard=shard(args), debug=args.debug)
    # Unmounted. A call to a pachd that stopped answering may still hold a worker
    # thread, which interpreter shutdown would wait for: leave now instead.
    sys.stdout.flush()
    os._exit(0)


def _say_when_mounted(mounts: Callable[[], list[str]], target: str) -> None:
    """Prints v1.2's line once the kernel lists the mount (the mount call itself blocks until unmounted)."""
    while target not in mounts():
        time.sleep(READY_POLL_SECONDS)
    print("Filesystem mounted, CTRL-C to exit.", flush=True)


def unmount(args: argparse.Namespace, client: Client) -> None:
    from pachctl.fuse import mount as fuse

    targets = fuse.our_mounts() if args.all else [args.mountpoint]
    if not args.all and not args.mountpoint:
        raise InvalidArgumentError("name the mount point to unmount, or use -a for all")
    for target in targets:
        try:
            fuse.unmount(target)
        except OSError as err:
            raise InvalidArgumentError(str(err)) from err


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mounting = add(sub, "mount", mount, "Mount pfs locally. This command blocks until unmounted.")
    mounting.add_argument("mountpoint", metavar="path/to/mount/point")
    mounting.add_argument("-a", "--all-commits", action="store_true", help="show archived and cancelled commits")
    mounting.add_argument("-d", "--debug", action="store_true", help="turn on debug messages")
    add_shard_flags(mounting)
    unmounting = add(sub, "unmount", unmount, "Unmount pfs.")
    unmounting.add_argument("mountpoint", nargs="?", default="", metavar="path/to/mount/point")
    unmounting.add_argument("-a", "--all", action="store_true", help="unmount all pfs mounts")
