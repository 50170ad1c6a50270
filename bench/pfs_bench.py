"""PFS: put-file and get-file of 1 GiB against cp and cat; many small files; deduplication."""

from __future__ import annotations

import os
import shutil
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from bench.common import drop_caches, folder_size, pachctl, running_pachd, scratch, shell, timed
from pachyderm_client import Client

GIB = 1 << 30


def run(size: int = GIB, small_files: int = 10_000) -> list[str]:
    lines = ["## PFS", ""]
    with scratch() as folder, running_pachd(folder) as pachd:
        source = folder / "source.bin"
        with open(source, "wb") as out:
            for _ in range(size // (64 << 20)):
                out.write(os.urandom(64 << 20))
        mib = size / (1 << 20)
        with Client(pachd.address) as client:
            client.create_repo("bench")
            lines += _put_get(client, pachd.address, source, folder, mib)
            lines += _small_files(pachd.address, folder, small_files)
            lines += _dedup(client, pachd, folder)
    return lines


def _median(action: Callable[[], object], before: Callable[[], object] = lambda: None, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        before()
        times.append(timed(action))
    return statistics.median(times)


def _put_get(client: Client, address: str, source: Path, folder: Path, mib: float) -> list[str]:
    copy = folder / "copy.bin"
    shell("sync")
    get = f"ADDRESS={address} {sys.executable} -m pachctl.main -q get-file bench master/0 big > /dev/null"
    remove = lambda: copy.unlink(missing_ok=True)  # noqa: E731
    cp_seconds = _median(lambda: shell(f"cp {source} {copy}"), lambda: (remove(), shell("sync")))
    cp_sync_seconds = _median(lambda: shell(f"cp {source} {copy} && sync"), lambda: (remove(), shell("sync")))
    put_seconds = _median(lambda: pachctl(address, "put-file", "bench", "fresh", "big", "-c", "-f", str(source),
                                          "-d", "none"), lambda: _forget(client, folder))
    pachctl(address, "put-file", "bench", "master", "big", "-c", "-f", str(source), "-d", "none")
    cat_seconds = _median(lambda: shell(f"cat {copy} > /dev/null"))
    get_seconds = _median(lambda: shell(get))
    cold = []
    if drop_caches():
        cold_cat = _median(lambda: shell(f"cat {copy} > /dev/null"), drop_caches)
        cold_get = _median(lambda: shell(get), drop_caches)
        cold = [f"| get-file vs `cat`, cold page cache | {cold_get:.2f} s | {cold_cat:.2f} s | "
                f"**{cold_cat / cold_get:.2f}** |"]
    assert client.inspect_file(("bench", "master/0"), "big").size_bytes == source.stat().st_size
    return [
        f"{mib:.0f} MiB of random bytes, through `pachctl` on loopback, against the same disk "
        "(median of 3 runs each):",
        "",
        "| what | pachd | reference | ratio (reference / pachd time) |",
        "|---|---|---|---|",
        f"| put-file (durable: fsync before the commit) vs `cp` | {put_seconds:.2f} s ({mib / put_seconds:.0f} MiB/s) "
        f"| {cp_seconds:.2f} s | **{cp_seconds / put_seconds:.2f}** |",
        f"| put-file vs `cp && sync` (same durability) | {put_seconds:.2f} s | {cp_sync_seconds:.2f} s | "
        f"**{cp_sync_seconds / put_seconds:.2f}** |",
        f"| get-file vs `cat`, warm page cache | {get_seconds:.2f} s ({mib / get_seconds:.0f} MiB/s) | "
        f"{cat_seconds:.2f} s | **{cat_seconds / get_seconds:.2f}** |",
        *cold,
        "",
    ]


def _forget(client: Client, folder: Path) -> None:
    """Makes the next put store every block anew (no deduplication against the last run)."""
    client.delete_all()
    client.create_repo("bench")
    shutil.rmtree(folder / "pachd" / "objects" / "blocks", ignore_errors=True)
    shell("sync")


def _small_files(address: str, folder: Path, count: int) -> list[str]:
    tree = folder / "small"
    for i in range(count):
        target = tree / f"dir{i % 100}" / f"file{i}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(os.urandom(1024))
    seconds = timed(lambda: pachctl(address, "put-file", "bench", "small", "-c", "-r", "-f", str(tree)))
    return [f"{count} files of 1 KiB with `put-file -r` (one stream): {seconds:.2f} s, "
            f"**{count / seconds:.0f} files/s**.", ""]


def _dedup(client: Client, pachd: object, folder: Path) -> list[str]:
    data_dir: Path = pachd.data_dir  # type: ignore[attr-defined]
    source = folder / "hundred.bin"
    source.write_bytes(os.urandom(100 << 20))
    client.create_repo("dedup")
    before = folder_size(data_dir)
    for branch in ("first", "second"):
        with client.commit("dedup", branch) as commit, open(source, "rb") as handle:
            client.put_file(("dedup", commit.id), "same", handle, delimiter=0)
        if branch == "first":
            after_first = folder_size(data_dir)
    growth = folder_size(data_dir) - after_first
    stored = after_first - before
    return [f"The same 100 MiB put twice: the first put grew the data dir by {stored / (1 << 20):.1f} MiB, the "
            f"second by {growth / 1024:.1f} KiB (**{100 * growth / stored:.2f}%**: metadata only).", ""]
