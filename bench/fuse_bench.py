"""FUSE: cat through a mount against get-file; ls -R of a commit with many files."""

from __future__ import annotations

import os
import sys

from bench.common import drop_caches, running_pachd, scratch, shell, timed
from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2
from tests.support.mounts import Mount


def run(size: int = 1 << 30, files: int = 10_000) -> list[str]:
    with scratch() as folder, running_pachd(folder) as pachd, Client(pachd.address) as client:
        client.create_repo("big")
        with client.commit("big") as commit:
            client.put_file(("big", commit.id), "file", _random(size), delimiter=pfs_pb2.NONE)
        client.create_repo("many")
        with client.commit("many") as commit:
            client.put_files(("many", commit.id), [(f"d{i % 100}/f{i}", b"x" * 100) for i in range(files)])
        mount = Mount(pachd.address, folder / "mnt")
        try:
            get = f"ADDRESS={pachd.address} {sys.executable} -m pachctl.main -q get-file big master/0 file > /dev/null"
            get_seconds = timed(lambda: shell(get))
            cat_seconds = timed(lambda: shell(f"cat {mount.mountpoint}/big/master-0/file > /dev/null"))
            listing = timed(lambda: shell(f"ls -R {mount.mountpoint}/many/master-0 > /dev/null"))
        finally:
            mount.unmount()
    mib = size / (1 << 20)
    drop_caches()
    return ["## FUSE", "",
            f"`cat` of a {mib:.0f} MiB file through `pachctl mount`: {cat_seconds:.2f} s ({mib / cat_seconds:.0f} MiB/s); "
            f"`pachctl get-file` of the same file: {get_seconds:.2f} s: **{get_seconds / cat_seconds:.2f}x** of "
            "get-file's speed (goal 0.5x).", "",
            f"`ls -R` of a commit with {files} files in 100 directories: **{listing:.2f} s**.", ""]


def _random(size: int) -> object:
    chunk = os.urandom(1 << 20)
    return (chunk for _ in range(size // len(chunk)))


