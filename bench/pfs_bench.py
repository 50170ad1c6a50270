"""PFS: put-file and get-file of 1 GiB against cp and cat; many small files; deduplication."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.common import (
    ROOT, children_cpu, drop_caches, folder_size, pachctl, process_cpu, running_pachd, scratch, shell, timed,
)
from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port

GIB = 1 << 30


def run(size: int = GIB, small_files: int = 10_000, runs: int = 3) -> list[str]:
    lines = ["## PFS", ""]
    with scratch() as folder, running_pachd(folder) as pachd:
        source = folder / "source.bin"
        with open(source, "wb") as out:
            for _ in range(size // (64 << 20)):
                out.write(os.urandom(64 << 20))
        mib = size / (1 << 20)
        with Client(pachd.address) as client:
            client.create_repo("bench")
            lines += _put_get(client, pachd, source, folder, mib, runs)
            lines += _small_files(pachd.address, folder, small_files)
            lines += _dedup(client, pachd, folder)
    return lines


def _median(action: Callable[[], object], before: Callable[[], object] = lambda: None, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        before()
        times.append(timed(action))
    return statistics.median(times)


Measures = dict[str, list[tuple[float, float]]]  # what -> (CPU seconds, wall seconds) of each run


def _measured(measures: Measures, what: str, action: Callable[[], object], pid: int = 0) -> None:
    """Runs `action`, adding its CPU seconds (its child processes', and pachd's if `pid`) and wall seconds."""
    before, children, start = process_cpu(pid) if pid else 0.0, children_cpu(), time.perf_counter()
    action()
    wall = time.perf_counter() - start
    measures.setdefault(what, []).append((children_cpu() - children + (process_cpu(pid) - before if pid else 0.0), wall))


def _put_get(client: Client, pachd: PachdProcess, source: Path, folder: Path, mib: float, runs: int) -> list[str]:
    copy = folder / "copy.bin"
    address = pachd.address
    assert pachd.process is not None
    pid = pachd.process.pid
    shell("sync")
    get = f"ADDRESS={address} {sys.executable} -m pachctl.main -q get-file bench master/0 big > /dev/null"
    remove = lambda: (copy.unlink(missing_ok=True), shell("sync"))  # noqa: E731
    measures: Measures = {}
    with _bare_stream() as stream_address:
        for _ in range(runs):  # interleaved, so the machine's load weighs on each the same
            for delimiter in ("none", "line"):
                _forget(client, folder)
                _measured(measures, f"put-file -d {delimiter}", lambda: pachctl(
                    address, "put-file", "bench", "fresh", "big", "-c", "-f", str(source), "-d", delimiter), pid)
            _measured(measures, "stream", lambda: subprocess.run(
                [sys.executable, "-m", "bench.grpc_stream", "send", stream_address, str(source)], check=True,
                cwd=ROOT), _bare_stream.pid)
            _measured(measures, "sha512", lambda: subprocess.run(
                [sys.executable, "-m", "bench.grpc_stream", "sha512", str(source)], check=True, cwd=ROOT,
                stdout=subprocess.DEVNULL))
            remove()
            _measured(measures, "cp", lambda: shell(f"cp {source} {copy}"))
            remove()
            _measured(measures, "cp && sync", lambda: shell(f"cp {source} {copy} && sync"))
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
    gib = mib / 1024

    def cpu(what: str) -> str:
        values = [c / gib for c, _ in measures[what]]
        return f"{min(values):.2f} / {statistics.median(values):.2f}"

    def wall(what: str) -> float:
        return statistics.median(w for _, w in measures[what])

    def median_cpu(what: str) -> float:
        return statistics.median(c for c, _ in measures[what]) / gib

    put = wall("put-file -d none")
    rows = [f"| {what} | {cpu(key)} | {min(w for _, w in measures[key]):.2f} / {wall(key):.2f} s |" for what, key in (
        ("`put-file -d none` (pachd + pachctl; durable: synced before the commit)", "put-file -d none"),
        ("`put-file` (default: cut at lines into 8 MiB blocks)", "put-file -d line"),
        ("a bare gRPC stream of the file, 1 MiB messages (server + client, grpc.aio)", "stream"),
        ("SHA-512 of the file (read + hash, hashlib)", "sha512"),
        ("`cp`", "cp"), ("`cp && sync`", "cp && sync"))]
    return [
        f"{mib:.0f} MiB of random bytes through `pachctl` on loopback, against the same disk; {runs} runs of each, "
        "interleaved; CPU seconds per GiB of every process involved (min / median) and wall seconds (min / median):",
        "",
        "| what | CPU s/GiB | wall |",
        "|---|---|---|",
        *rows,
        "",
        f"put-file's CPU against the floor of a stream plus its hash: **{median_cpu('put-file -d none'):.2f}** s/GiB "
        f"vs {median_cpu('stream'):.2f} + {median_cpu('sha512'):.2f} s/GiB (medians); against `cp && sync` "
        f"(same durability) in wall time: **{wall('cp && sync') / put:.2f}x** (line-cut: "
        f"**{wall('cp && sync') / wall('put-file -d line'):.2f}x**).",
        "",
        "| what | pachd | reference | ratio (reference / pachd time) |",
        "|---|---|---|---|",
        f"| get-file vs `cat`, warm page cache | {get_seconds:.2f} s ({mib / get_seconds:.0f} MiB/s) | "
        f"{cat_seconds:.2f} s | **{cat_seconds / get_seconds:.2f}** |",
        *cold,
        "",
    ]


class _BareStream:
    """The bare gRPC server of bench.grpc_stream, running for the block (its pid while it runs)."""

    pid = 0

    @contextlib.contextmanager
    def __call__(self) -> Iterator[str]:
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "bench.grpc_stream", "serve", str(port)], cwd=ROOT,
                                  stdout=subprocess.PIPE)
        try:
            assert server.stdout is not None
            server.stdout.readline()  # "serving"
            self.pid = server.pid
            yield f"127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait()


_bare_stream = _BareStream()


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


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) << 20 if len(sys.argv) > 1 else GIB, small_files=1000)))
