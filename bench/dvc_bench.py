"""The peer: DVC on the same data, measured side by side with pachd in one run.

    python -m bench.dvc_bench [--quick] [--rounds N] [--large-only] [--big-mib N]   # see --help

Each row does the same work both ways, in fresh folders, rotating which goes
first round after round, so load on the machine hits both alike. Wall time is
shown as minimum and median; CPU seconds are every process's own (DVC and the
commands it runs; pachd, its pods and pachctl), from the kernel's accounting.
The ratio is DVC's median time over ours: above 1 means pachd is faster.

Rows: versioning one large file (DVC followed by `sync`, since put-file is
durable when it returns), reading it back (both with pachctl's same-machine
fast path, and again over the gRPC stream alone), many small files (first version, then
a second with 1 % changed), a `cp` stage over them and its re-run after the 1 %
change, and a CPU-bound stage (sha256 of each file) and its re-run.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import RESULTS, process_cpu, scratch
from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

SECTION = "## The peer: DVC"
CP_STAGE = "mkdir -p {out} && cp -r {src}/. {out}/"
SHA_STAGE = "mkdir -p {out} && for f in {src}/*; do sha256sum \"$f\" > {out}/$(basename \"$f\").sha; done"


@dataclass
class Row:
    name: str
    dvc: list[tuple[float, float]] = field(default_factory=list)  # (wall, cpu) per round
    ours: list[tuple[float, float]] = field(default_factory=list)

    def line(self) -> str:
        def cell(runs: list[tuple[float, float]]) -> str:
            walls = [w for w, _ in runs]
            cpu = statistics.median(c for _, c in runs)
            return f"{min(walls):.2f} / {statistics.median(walls):.2f} s, {cpu:.2f} s CPU"

        ratio = statistics.median(w for w, _ in self.dvc) / statistics.median(w for w, _ in self.ours)
        return f"| {self.name} | {cell(self.dvc)} | {cell(self.ours)} | **{ratio:.2f}** |"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Measure:
    """Wall and CPU time of one action, counting our child processes and a pachd."""

    def __init__(self, pachd: PachdProcess | None = None) -> None:
        self._pid = pachd.process.pid if pachd is not None and pachd.process is not None else None

    def __call__(self, action: Callable[[], object]) -> tuple[float, float]:
        cpu = _children_cpu() + (process_cpu(self._pid, reaped=True) if self._pid else 0.0) + time.process_time()
        start = time.perf_counter()
        action()
        wall = time.perf_counter() - start
        cpu = _children_cpu() + (process_cpu(self._pid, reaped=True) if self._pid else 0.0) + time.process_time() - cpu
        return wall, cpu


def run_cmd(*args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **(env or {})})


def _dvc(*args: str, cwd: Path) -> None:
    run_cmd(sys.executable, "-m", "dvc", *args, cwd=cwd, env={"DVC_NO_ANALYTICS": "1"})


def _pachctl(address: str, *args: str, env: dict[str, str] | None = None) -> None:
    run_cmd(sys.executable, "-m", "pachctl.main", "-q", *args, cwd=Path.cwd(), env={"ADDRESS": address, **(env or {})})


def _small_files(folder: Path, count: int, size: int, seed: int) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    for n in range(count):
        (folder / f"f{n:05d}").write_bytes(rng.randbytes(size))
    return folder


def _change(folder: Path, fraction: float, seed: int) -> list[Path]:
    rng = random.Random(seed)
    files = sorted(folder.iterdir())
    changed = rng.sample(files, max(1, int(len(files) * fraction)))
    for path in changed:
        path.write_bytes(rng.randbytes(path.stat().st_size))
    return changed


@contextmanager
def _dvc_repo(folder: Path) -> Iterator[Path]:
    folder.mkdir(parents=True)
    _dvc("init", "--no-scm", "-q", cwd=folder)
    yield folder


@contextmanager
def _pachd(folder: Path) -> Iterator[tuple[PachdProcess, Client]]:
    folder.mkdir(parents=True)
    server = PachdProcess(folder / "pachd").start()
    try:
        with Client(server.address) as client:
            yield server, client
    finally:
        server.stop()


def _one_round(rows: dict[str, Row], root: Path, *, big: int, files: int, size: int, seed: int,
               turn: int) -> None:
    """Every row once with DVC and once with pachd, on the same data (and the large file's rows
    once more with pachd's gRPC stream alone, in a pachd of its own so no block is reused)."""
    data = root / "data"
    data.mkdir(parents=True)
    blob = data / "big.bin"
    with open(blob, "wb") as handle:
        rng = random.Random(seed)
        for _ in range(big >> 20):
            handle.write(rng.randbytes(1 << 20))
    small = _small_files(data / "small", files, size, seed) if files else data / "small"
    sides = [_dvc_side, _pachd_side, _stream_side]
    sides = sides[turn % 3:] + sides[:turn % 3]
    for side in sides:
        side(rows, root / side.__name__, blob, small, seed)
        shutil.rmtree(root / side.__name__, ignore_errors=True)
    shutil.rmtree(data)


def _dvc_side(rows: dict[str, Row], root: Path, blob: Path, small: Path, seed: int) -> None:
    measure = Measure()
    with _dvc_repo(root) as repo:
        shutil.copy(blob, repo / "big.bin")
        rows["big"].dvc.append(measure(lambda: (_dvc("add", "-q", "big.bin", cwd=repo), os.sync())))
        (repo / "big.bin").unlink()
        rows["read"].dvc.append(measure(lambda: _dvc("checkout", "-q", "big.bin.dvc", cwd=repo)))
        if not small.exists():
            return
        shutil.copytree(small, repo / "small")
        rows["small"].dvc.append(measure(lambda: _dvc("add", "-q", "small", cwd=repo)))
        _dvc("stage", "add", "-q", "-n", "copy", "-d", "small", "-o", "copied",
             CP_STAGE.format(src="small", out="copied"), cwd=repo)
        _dvc("stage", "add", "-q", "-n", "hash", "-d", "small", "-o", "hashed",
             SHA_STAGE.format(src="small", out="hashed"), cwd=repo)
        rows["cp"].dvc.append(measure(lambda: _dvc("repro", "-q", "copy", cwd=repo)))
        rows["sha"].dvc.append(measure(lambda: _dvc("repro", "-q", "hash", cwd=repo)))
        _change(repo / "small", 0.01, seed + 1)
        rows["small2"].dvc.append(measure(lambda: _dvc("add", "-q", "small", cwd=repo)))
        rows["cp2"].dvc.append(measure(lambda: _dvc("repro", "-q", "copy", cwd=repo)))
        rows["sha2"].dvc.append(measure(lambda: _dvc("repro", "-q", "hash", cwd=repo)))


def _pachd_side(rows: dict[str, Row], root: Path, blob: Path, small: Path, seed: int) -> None:
    with _pachd(root) as (server, client):
        measure = Measure(server)
        address = server.address
        _large_file(rows["big"], rows["read"], measure, address, client, blob, root / "big.out")
        if not small.exists():
            return
        client.create_repo("small")
        client.create_pipeline(pipeline("copy", CP_STAGE.format(src="/pfs/small", out="/pfs/out"), [("small", MAP)]))
        client.create_pipeline(pipeline("hash", SHA_STAGE.format(src="/pfs/small", out="/pfs/out"), [("small", MAP)]))
        client.stop_pipeline("copy")
        client.stop_pipeline("hash")
        local = root / "small"
        shutil.copytree(small, local)
        rows["small"].ours.append(measure(lambda: _pachctl(address, "put-file", "small", "master", "/", "-c", "-r",
                                                            "-f", str(local))))
        rows["cp"].ours.append(measure(lambda: _run_stage(client, "copy", "master/0")))
        rows["sha"].ours.append(measure(lambda: _run_stage(client, "hash", "master/0")))
        changed = _change(local, 0.01, seed + 1)
        rows["small2"].ours.append(measure(lambda: _put_changed(client, changed)))
        rows["cp2"].ours.append(measure(lambda: _run_stage(client, "copy", "master/1")))
        rows["sha2"].ours.append(measure(lambda: _run_stage(client, "hash", "master/1")))


STREAM_ONLY = {"PACH_LOCAL_FASTPATH": "0"}


def _stream_side(rows: dict[str, Row], root: Path, blob: Path, small: Path, seed: int) -> None:
    """The large file's rows through the gRPC stream alone (what the same-machine fast path buys)."""
    with _pachd(root) as (server, client):
        _large_file(rows["big_stream"], rows["read_stream"], Measure(server), server.address, client, blob,
                    root / "big.out", STREAM_ONLY)


def _large_file(put: Row, read: Row, measure: Measure, address: str, client: Client, blob: Path, out: Path,
                env: dict[str, str] | None = None) -> None:
    """pachctl put-file of a working copy of the large file in a commit of its own, then, the copy
    deleted, get-file of it back to the same path: DVC's own steps (copy in, add; remove, checkout).
    On this VM, memory freed a few seconds ago costs a host fault when used again, so where each
    side's new file lands matters: DVC's checkout reuses the pages its removal just freed."""
    client.create_repo("big")
    shutil.copy(blob, out)
    put.ours.append(measure(lambda: _pachctl(address, "put-file", "big", "master", "big.bin", "-c", "-f", str(out),
                                             env=env)))
    out.unlink()
    read.ours.append(measure(lambda: _get_file(address, out, env)))


def _get_file(address: str, out: Path, env: dict[str, str] | None = None) -> None:
    with open(out, "wb") as handle:
        subprocess.run([sys.executable, "-m", "pachctl.main", "-q", "get-file", "big", "master/0", "big.bin"],
                       check=True, stdout=handle, env={**os.environ, "ADDRESS": address, **(env or {})})


def _put_changed(client: Client, changed: list[Path]) -> None:
    """A second version: the changed files replace their old content in a new commit (one stream)."""
    commit = client.start_commit("small")
    for path in changed:
        client.delete_file(("small", commit.id), path.name)
    client.put_files(("small", commit.id), [(path.name, path.read_bytes()) for path in changed])
    client.finish_commit(("small", commit.id))


def _run_stage(client: Client, name: str, commit: str) -> None:
    """Runs the stopped pipeline on the commit (its next job) and waits for the output."""
    client.start_pipeline(name)
    client.flush_commit([("small", commit)], to_repos=[name], timeout=3600)
    client.stop_pipeline(name)


ROWS = {
    "big": "versioning a large file (DVC: add, then sync)",
    "read": "reading it back (DVC: checkout)",
    "big_stream": "versioning it, pachctl over the gRPC stream only (PACH_LOCAL_FASTPATH=0)",
    "read_stream": "reading it back, over the gRPC stream only",
    "small": "small files, first version",
    "small2": "small files, second version with 1 % changed",
    "cp": "a `cp` stage over the small files",
    "cp2": "its re-run after the 1 % change",
    "sha": "a CPU-bound stage (sha256 of each file)",
    "sha2": "its re-run after the 1 % change",
}


def run(*, big: int = 1 << 30, files: int = 10_000, size: int = 1024, rounds: int = 3) -> list[str]:
    """The section for results.md; files=0 measures the large file's rows alone."""
    rows = {key: Row(name) for key, name in ROWS.items()}
    rows["big_stream"].dvc, rows["read_stream"].dvc = rows["big"].dvc, rows["read"].dvc  # the same DVC runs
    with scratch() as root:
        for n in range(rounds):
            _one_round(rows, root / f"round{n}", big=big, files=files, size=size, seed=n, turn=n)
    version = subprocess.run([sys.executable, "-m", "dvc", "--version"], capture_output=True, text=True).stdout.strip()
    return [SECTION, "",
            f"DVC {version} and pachd on the same data ({big >> 20} MiB file; {files} files of {size} B), "
            f"{rounds} rounds, rotating which goes first; wall time min / median, median CPU seconds. "
            "Ratio: DVC's median time / ours (above 1: pachd is faster).", "",
            "| row | DVC | pachd | ratio |", "|---|---|---|---|",
            *(row.line() for row in rows.values() if row.ours), ""]


def replace_section(text: str, section: list[str]) -> str:
    """results.md with this benchmark's section replaced (or added at the end)."""
    lines = text.splitlines()
    if SECTION in lines:
        start = lines.index(SECTION)
        end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        lines[start:end] = section
    else:
        lines += ["", *section]
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dvc_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="32 MiB, 300 files, 1 round; results.md untouched")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--big-mib", type=int, help="the large file's size in MiB (default 1024)")
    parser.add_argument("--large-only", action="store_true", help="only the large file's rows")
    parser.add_argument("--no-write", action="store_true", help="print the section without updating results.md")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 3)
    big = (args.big_mib << 20) if args.big_mib else (32 << 20) if args.quick else (1 << 30)
    files = 0 if args.large_only else 300 if args.quick else 10_000
    section = run(big=big, files=files, rounds=rounds)
    print("\n".join(section))
    if not (args.quick or args.no_write or args.large_only):
        RESULTS.write_text(replace_section(RESULTS.read_text(), section))


if __name__ == "__main__":
    main()
