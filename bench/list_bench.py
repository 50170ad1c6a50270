"""Listing: ListFile of one directory of many files against `ls -l` of the same
files on the local disk; a walk of every file of a tree (a ListFile per
directory) and a RECURSE listing of it against `ls -lR`; and `pachctl
list-file` of the directory, printed, against `ls -l` printing it.

Each round runs every measure once, one after the other (ours, then the
reference), so load on the shared machine falls on both alike. Reported: each
side's CPU seconds (pachd's and the client's or pachctl's; ls's) and wall
seconds, min and median over the rounds, and the median of the rounds' CPU
ratios (each ratio taken from one round, side by side).

`--before REV` also runs the code of git revision REV (pachd, pachctl and the
client, exported to a scratch folder) over the same files, which each build's
pachd puts itself (a build reads the trees it wrote: node formats may differ), and
interleaves it with this checkout's in every round: before and after in one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import ROOT, children_cpu, extract_revision, process_cpu, scratch
from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2
from tests.support.pachd import PachdProcess

ROUNDS = 7


@dataclass
class Side:
    """One pachd (this checkout's, or an earlier revision's) and how to run its pachctl."""

    name: str
    server: PachdProcess
    client: Client
    source: Path | None  # the earlier revision's tree; None: this checkout


@dataclass
class Measures:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    ref_cpu: list[float] = field(default_factory=list)
    ref_wall: list[float] = field(default_factory=list)


def run(files: int = 100_000, before: str = "", rounds: int = ROUNDS) -> list[str]:
    with scratch() as folder, ExitStack() as stack:
        local = folder / "local"
        for path in _paths(files):
            target = local / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"x\n")
        data = folder / "after"
        commit_id = _load(data, None, files)
        sides = []
        if before:
            tree = extract_revision(before, folder / "code")
            if _load(folder / "before", tree, files) != commit_id:
                raise SystemExit("the two builds named the loaded commit differently")
            exact = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", before], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.strip()
            sides.append(stack.enter_context(_side(f"before ({before} at {exact})", folder / "before", tree)))
        sides.append(stack.enter_context(_side("after" if before else "this checkout", data, None)))
        load = [os.getloadavg()[0]]
        measured = _measure(sides, commit_id, local, rounds)
        load.append(os.getloadavg()[0])
    lines = ["## Listing", "",
             f"`python -m bench.list_bench {files}{f' --before {before}' if before else ''}`: {rounds} rounds on "
             f"the same {files} files (1 directory; a tree of 100 directories), load average "
             f"{load[0]:.1f} at the start and {load[1]:.1f} at the end ({os.cpu_count()} cores). Each round runs "
             "every row once, ours then the reference. CPU seconds (pachd + client or pachctl; ls) and wall "
             "seconds, min / median; the ratio is the median of the rounds' CPU ratios:", "",
             "| what | code | our CPU | reference CPU | ratio (CPU) | our wall | reference wall |",
             "|---|---|---|---|---|---|---|"]
    for what, per_side in measured.items():
        lines += [_row(what, side, m) for side, m in per_side.items()]
    return [*lines, ""]


def _measure(sides: list[Side], commit_id: str, local: Path, rounds: int) -> dict[str, dict[str, Measures]]:
    target = ("many", commit_id)
    rows: dict[str, tuple[Callable[[Side], Callable[[], object]], list[str]]] = {
        "ListFile of a directory of all the files vs `ls -l`":
            (lambda s: lambda: s.client.list_file(target, "flat"), ["ls", "-l", str(local / "flat")]),
        "walk of the tree (ListFile per directory) vs `ls -lR`":
            (lambda s: lambda: sum(1 for _ in s.client.walk_files(target, "tree")),
             ["ls", "-lR", str(local / "tree")]),
        "ListFile RECURSE of the tree (sizes of its directories) vs `ls -lR`":
            (lambda s: lambda: s.client.list_file(target, "tree", mode=pfs_pb2.ListFile_RECURSE),
             ["ls", "-lR", str(local / "tree")]),
        "`pachctl list-file` of the directory, printed, vs `ls -l` printing it":
            (lambda s: lambda: _pachctl(s, "list-file", "many", commit_id, "flat"),
             ["ls", "-l", str(local / "flat")]),
    }
    found = {what: {side.name: Measures() for side in sides} for what in rows}
    for k in range(rounds):
        for what, (ours, reference) in rows.items():
            for side in sides[k % len(sides):] + sides[:k % len(sides)]:  # who goes first alternates
                _once(found[what][side.name], ours(side), reference, side.server)
    return found


def _once(m: Measures, ours: Callable[[], object], reference: list[str], server: PachdProcess) -> None:
    pid = server.process.pid  # type: ignore[union-attr]
    before, start, own, children = process_cpu(pid), time.perf_counter(), time.process_time(), children_cpu()
    ours()
    m.wall.append(time.perf_counter() - start)
    m.cpu.append(process_cpu(pid) - before + time.process_time() - own + children_cpu() - children)
    children = children_cpu()
    start = time.perf_counter()
    subprocess.run(reference, check=True, stdout=subprocess.PIPE)  # ls writes into a pipe, as pachctl does
    m.ref_wall.append(time.perf_counter() - start)
    m.ref_cpu.append(children_cpu() - children)


def _pachctl(side: Side, *args: str) -> None:
    """The side's pachctl printing into a pipe that is read (and dropped)."""
    subprocess.run([sys.executable, "-m", "pachctl.main", *args], check=True, stdout=subprocess.PIPE,
                   cwd=side.source or ROOT, env={**os.environ, **_code(side.source), "ADDRESS": side.server.address})


def _code(source: Path | None) -> dict[str, str]:
    """The environment that imports the tree `source` (its pachd, pachctl and client) first."""
    if source is None:
        return {}
    paths = [str(source), str(source / "client"), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@contextmanager
def _pachd(data: Path, source: Path | None) -> Iterator[PachdProcess]:
    # At pachd's default log level: the tests' DEBUG writes a line per call (0.2-0.3 ms of CPU each).
    server = PachdProcess(data, source=source, env=_code(source), extra_args=["--log-level", "INFO"]).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def _side(name: str, data: Path, source: Path | None) -> Iterator[Side]:
    with _pachd(data, source) as server, Client(server.address) as client:
        yield Side(name, server, client, source)


def _load(data: Path, source: Path | None, files: int) -> str:
    """Puts the files with the pachd of `source` (each build reads the trees it wrote itself:
    their node formats may differ); the commit's ID."""
    with _pachd(data, source) as loader, Client(loader.address) as client:
        client.create_repo("many")
        with client.commit("many") as commit:
            client.put_files(("many", commit.id), ((path, b"x\n") for path in _paths(files)))
        return commit.id


def _paths(files: int) -> list[str]:
    return [f"/flat/f{i:06d}" for i in range(files)] + [f"/tree/d{i % 100:03d}/f{i:06d}" for i in range(files)]


def _row(what: str, side: str, m: Measures) -> str:
    def both(values: list[float]) -> str:
        return f"{min(values):.2f} / {statistics.median(values):.2f} s"

    ratio = statistics.median(ours / max(ref, 1e-3) for ours, ref in zip(m.cpu, m.ref_cpu))
    return (f"| {what} | {side} | {both(m.cpu)} | {both(m.ref_cpu)} | **{ratio:.2f}x** | {both(m.wall)} | "
            f"{both(m.ref_wall)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.list_bench")
    parser.add_argument("files", nargs="?", type=int, default=100_000)
    parser.add_argument("--before", default="", help="also run this git revision's code, interleaved")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    options = parser.parse_args()
    print("\n".join(run(options.files, options.before, options.rounds)))
