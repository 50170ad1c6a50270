"""Listing: ListFile of one directory of many files against `ls -l` of the same
files on the local disk, and a walk of every file of a tree (a ListFile per
directory) and a RECURSE listing of it against `ls -lR`. Runs interleave the two sides; each side's CPU
seconds (pachd's and the client's; ls's) and wall seconds are reported as min
and median. The machine is shared, so CPU seconds are the fairer measure.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import children_cpu, process_cpu, running_pachd, scratch
from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2

RUNS = 5


def run(files: int = 100_000) -> list[str]:
    with scratch() as folder, running_pachd(folder) as pachd, Client(pachd.address) as client:
        client.create_repo("many")
        with client.commit("many") as commit:
            client.put_files(("many", commit.id), ((path, b"x\n") for path in _paths(files)))
        local = folder / "local"
        for path in _paths(files):
            target = local / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x\n")
        pid = pachd.process.pid  # type: ignore[union-attr]
        flat = _side_by_side(lambda: client.list_file(("many", commit.id), "flat"), ["ls", "-l", str(local / "flat")], pid)
        walk = _side_by_side(lambda: sum(1 for _ in client.walk_files(("many", commit.id), "tree")),
                             ["ls", "-lR", str(local / "tree")], pid)
        recurse = _side_by_side(lambda: client.list_file(("many", commit.id), "tree", mode=pfs_pb2.ListFile_RECURSE),
                                ["ls", "-lR", str(local / "tree")], pid)
    return ["## Listing", "",
            f"Interleaved runs ({RUNS} each) on the same {files} files (1 directory; a tree of 100 directories), "
            "CPU seconds (pachd + client; ls) and wall seconds, min / median:", "",
            "| what | pachd CPU | reference CPU | ratio (median CPU) | pachd wall | reference wall |",
            "|---|---|---|---|---|---|",
            _row(f"ListFile of a {files}-file directory vs `ls -l`", flat),
            _row(f"walk of {files} files in a tree (ListFile per directory) vs `ls -lR`", walk),
            _row(f"ListFile RECURSE of the tree (its 100 directories, sizes over {files} files) vs `ls -lR`", recurse),
            ""]


def _paths(files: int) -> list[str]:
    return [f"/flat/f{i:06d}" for i in range(files)] + [f"/tree/d{i % 100:03d}/f{i:06d}" for i in range(files)]


Measures = dict[str, list[float]]


def _side_by_side(ours: Callable[[], object], reference: list[str], pid: int) -> Measures:
    found: Measures = {"cpu": [], "wall": [], "ref_cpu": [], "ref_wall": []}
    for _ in range(RUNS):
        before, start, own = process_cpu(pid), time.perf_counter(), time.process_time()
        ours()
        found["wall"].append(time.perf_counter() - start)
        found["cpu"].append(process_cpu(pid) - before + time.process_time() - own)
        children = children_cpu()
        start = time.perf_counter()
        subprocess.run(reference, check=True, stdout=subprocess.DEVNULL)
        found["ref_wall"].append(time.perf_counter() - start)
        found["ref_cpu"].append(children_cpu() - children)
    return found


def _row(what: str, m: Measures) -> str:
    def both(values: list[float]) -> str:
        return f"{min(values):.2f} / {statistics.median(values):.2f} s"

    ratio = statistics.median(m["cpu"]) / max(statistics.median(m["ref_cpu"]), 1e-3)
    return (f"| {what} | {both(m['cpu'])} | {both(m['ref_cpu'])} | **{ratio:.2f}x** | {both(m['wall'])} | "
            f"{both(m['ref_wall'])} |")


if __name__ == "__main__":
    print("\n".join(run(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
