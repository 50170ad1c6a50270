"""PFS writes: many concurrent PutFile streams into one open commit, and the
memory of one stream with no newline in it.

    python -m bench.write_bench [--quick]   # prints its section and updates it in results.md

Concurrent writers (threads, each with its own channel, all released at
once) put one small line each into the same file of one open commit, on
SQLite and on etcd; the reference is the same number of puts made one after
another by one client, in the same run. Peak memory is pachd's VmHWM while
one stream puts 4 GiB that hold no newline, next to a fresh pachd's.
"""

from __future__ import annotations

import datetime
import re
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench.common import RESULTS, scratch
from pachyderm_client import Client
from tests.support.etcd import EtcdServer
from tests.support.pachd import PachdProcess

MIB = 1 << 20
SECTION = "## PFS writes"


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _concurrent(address: str, writers: int, round_no: int) -> float:
    """Seconds for `writers` streams at once, each putting one line into one file."""
    repo = f"w{writers}r{round_no}"
    with Client(address) as setup:
        setup.create_repo(repo)
        commit = setup.start_commit(repo)
    clients = [Client(address) for _ in range(writers)]
    errors: list[BaseException] = []
    gate = threading.Barrier(writers + 1)

    def put(n: int) -> None:
        gate.wait()
        try:
            clients[n].put_file((repo, commit.id), "foo", f"writer {n}\n".encode())
        except BaseException as err:  # noqa: BLE001 - counted below
            errors.append(err)

    for client in clients:  # connect before the clock starts
        client.list_repo()
    threads = [threading.Thread(target=put, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    gate.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - start
    for client in clients:
        client.close()
    if errors:
        raise RuntimeError(f"{len(errors)} of {writers} writers failed: {errors[0]!r}")
    return seconds


def _serial(address: str, puts: int, round_no: int) -> float:
    repo = f"s{puts}r{round_no}"
    with Client(address) as client:
        client.create_repo(repo)
        commit = client.start_commit(repo)
        start = time.perf_counter()
        for n in range(puts):
            client.put_file((repo, commit.id), "foo", f"writer {n}\n".encode())
        return time.perf_counter() - start


def _writers_rows(pachd: PachdProcess, backend: str, counts: list[int], runs: int) -> list[str]:
    rows = []
    for writers in counts:
        together, alone = [], []
        for round_no in range(runs):  # interleaved, so load on the machine hits both alike
            together.append(_concurrent(pachd.address, writers, round_no))
            alone.append(_serial(pachd.address, writers, round_no))
        best, median = min(together), statistics.median(together)
        ref = statistics.median(alone)
        rows.append(f"| {writers} writers, {backend} | {writers / median:.0f} puts/s (min {best:.2f} s, median "
                    f"{median:.2f} s) | {writers / ref:.0f} puts/s ({ref:.2f} s) | **{ref / median:.2f}** |")
    return rows


def _no_newline(total: int) -> Iterator[bytes]:
    piece = bytes(range(256)).replace(b"\n", b"-") * (2 * MIB // 256)
    for _ in range(total // len(piece)):
        yield piece


def _memory_row(folder: Path, size: int) -> str:
    pachd = PachdProcess(folder / "memory").start()
    try:
        assert pachd.process is not None
        idle = _peak_rss(pachd.process.pid)
        with Client(pachd.address) as client:
            client.create_repo("big")
            start = time.perf_counter()
            with client.commit("big") as commit:
                client.put_file(("big", commit.id), "line", _no_newline(size))
            seconds = time.perf_counter() - start
        peak = _peak_rss(pachd.process.pid)
    finally:
        pachd.stop()
    return (f"Peak RSS of pachd while one stream put {size / (1 << 30):.2f} GiB with no newline (one block, "
            f"streamed through a temporary file): **{peak / MIB:.0f} MiB** (a fresh pachd: {idle / MIB:.0f} MiB; "
            f"{size / MIB / seconds:.0f} MiB/s).")


def run(counts: list[int], runs: int, no_newline: int) -> list[str]:
    lines = [SECTION, "", f"Measured {datetime.date.today().isoformat()}. Concurrent PutFile streams into one "
             "open commit, one line each into the same file; reference: the same puts one after another from one "
             f"client (median of {runs}, interleaved). No writer was refused in any run:", "",
             "| what | concurrent | one after another | ratio (serial time / concurrent time) |", "|---|---|---|---|"]
    with scratch() as folder:
        pachd = PachdProcess(folder / "sqlite").start()
        try:
            lines += _writers_rows(pachd, "SQLite", counts, runs)
        finally:
            pachd.stop()
        etcd = EtcdServer(folder / "etcd").start()
        pachd = PachdProcess(folder / "on-etcd", etcd=etcd.address).start()
        try:
            lines += _writers_rows(pachd, "etcd", counts, runs)
        finally:
            pachd.stop()
            etcd.stop()
        lines += ["", _memory_row(folder, no_newline), ""]
    return lines


def update_results(section: list[str]) -> None:
    """Replaces this section of results.md (or appends it)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    body = "\n".join(section)
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(body + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + body + "\n"
    RESULTS.write_text(text)


def main() -> None:
    quick = "--quick" in sys.argv
    section = run([20, 50] if quick else [100, 500], 1 if quick else 3, (256 * MIB) if quick else (4 << 30))
    print("\n".join(section))
    if not quick:
        update_results(section)


if __name__ == "__main__":
    main()
