"""Big puts, before and after: pachd's and pachctl's CPU per GiB of put-file, beside its references.

    python -m bench.bigput_bench --before REV [--size MIB] [--runs R]

Each round puts a file of random bytes with `-d none` and with the default
line cut into the pachd of this checkout and into the pachd of git revision
REV (extracted with `git archive`, run with that revision's pachctl), each
build on its own pachd, alternating which goes first; then a bare gRPC stream
of the file (bench/grpc_stream.py), its SHA-512, and `cp && sync` (the same
durability as a put). Reported: CPU seconds per GiB of pachd and of pachctl
(from /proc and the children's rusage), their sum, and wall seconds, as
min / median over the rounds, with the load average seen.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, children_cpu, extract_revision, process_cpu, scratch, shell
from bench.pfs_bench import _bare_stream
from tests.support.pachd import PachdProcess

Sample = dict[str, float]  # pachd, pachctl, wall (seconds), load


def _put(pachd: PachdProcess, tree: Path | None, source: Path, delimiter: str) -> Sample:
    env = {**os.environ, "ADDRESS": pachd.address}
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}:{tree / 'client'}"  # that revision's pachctl and client

    def pachctl(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "pachctl.main", "-q", *args], check=True, env=env,
                       cwd=tree or ROOT, stdout=subprocess.DEVNULL)

    pachctl("create-repo", f"put{delimiter}")
    shell("sync")
    assert pachd.process is not None
    pid = pachd.process.pid
    server, client, start = process_cpu(pid), children_cpu(), time.perf_counter()
    pachctl("put-file", f"put{delimiter}", "master", "big", "-c", "-f", str(source), "-d", delimiter)
    return {"wall": time.perf_counter() - start, "pachd": process_cpu(pid) - server,
            "pachctl": children_cpu() - client, "load": os.getloadavg()[0]}


def _reference(action: Callable[[], object], pid: int = 0) -> Sample:
    before, children, start = process_cpu(pid) if pid else 0.0, children_cpu(), time.perf_counter()
    action()
    wall = time.perf_counter() - start
    server = process_cpu(pid) - before if pid else 0.0
    return {"wall": wall, "pachd": server, "pachctl": children_cpu() - children, "load": os.getloadavg()[0]}


def run(before: str, size_mib: int = 1024, runs: int = 3) -> list[str]:
    samples: dict[str, list[Sample]] = {}
    with scratch() as folder:
        tree = extract_revision(before, folder / "before")
        source = folder / "source.bin"
        with open(source, "wb") as out:
            for _ in range(size_mib):
                out.write(os.urandom(1 << 20))
        copy = folder / "copy.bin"
        with _bare_stream() as stream:
            for round_ in range(runs):
                builds: list[tuple[str, Path | None]] = [("before", tree), ("after", None)]
                for name, build in builds if round_ % 2 == 0 else builds[::-1]:
                    for delimiter in ("none", "line"):
                        data = folder / f"{name}-{delimiter}-{round_}"
                        pachd = PachdProcess(data, source=build).start()
                        try:
                            samples.setdefault(f"{delimiter} {name}", []).append(_put(pachd, build, source, delimiter))
                        finally:
                            pachd.stop()
                            shell(f"rm -rf {data}")
                samples.setdefault("stream", []).append(_reference(lambda: subprocess.run(
                    [sys.executable, "-m", "bench.grpc_stream", "send", stream, str(source)], check=True, cwd=ROOT),
                    _bare_stream.pid))
                samples.setdefault("sha512", []).append(_reference(lambda: subprocess.run(
                    [sys.executable, "-m", "bench.grpc_stream", "sha512", str(source)], check=True, cwd=ROOT,
                    stdout=subprocess.DEVNULL)))
                copy.unlink(missing_ok=True)
                shell("sync")
                samples.setdefault("cp && sync", []).append(_reference(lambda: shell(f"cp {source} {copy} && sync")))
    return _table(samples, size_mib / 1024, before)


def _table(samples: dict[str, list[Sample]], gib: float, before: str) -> list[str]:
    def span(what: str, key: str, per_gib: bool = True) -> str:
        values = [s[key] / (gib if per_gib else 1) for s in samples[what]]
        return f"{min(values):.2f} / {statistics.median(values):.2f}"

    def total(what: str) -> str:
        values = [(s["pachd"] + s["pachctl"]) / gib for s in samples[what]]
        return f"{min(values):.2f} / {statistics.median(values):.2f}"

    rows = []
    for what, label in (("none before", f"put-file `-d none`, before ({before})"),
                        ("none after", "put-file `-d none`, after"),
                        ("line before", f"put-file `-d line`, before ({before})"),
                        ("line after", "put-file `-d line`, after")):
        rows.append(f"| {label} | **{span(what, 'pachd')}** | {span(what, 'pachctl')} | {total(what)} | "
                    f"{span(what, 'wall', False)} |")
    rows.append(f"| bare gRPC stream, 1 MiB messages (server / client) | {span('stream', 'pachd')} | "
                f"{span('stream', 'pachctl')} | {total('stream')} | {span('stream', 'wall', False)} |")
    rows.append(f"| SHA-512 of the file (read + hashlib) | | {span('sha512', 'pachctl')} | | "
                f"{span('sha512', 'wall', False)} |")
    rows.append(f"| `cp && sync` | | {span('cp && sync', 'pachctl')} | | {span('cp && sync', 'wall', False)} |")
    loads = [s["load"] for group in samples.values() for s in group]
    cp = statistics.median(s["wall"] for s in samples["cp && sync"])
    ratios = ", ".join(f"{what}: **{cp / statistics.median(s['wall'] for s in samples[what]):.2f}x**"
                       for what in ("none before", "none after", "line before", "line after"))
    return [
        f"{gib:.2f} GiB of random bytes, {len(samples['stream'])} rounds, load average {min(loads):.1f}-"
        f"{max(loads):.1f}; CPU seconds per GiB (pachd, pachctl, both) and wall seconds, min / median:",
        "",
        "| what | pachd (server) | pachctl (client) | both | wall s |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Speed against `cp && sync` (its median wall time / the put's): {ratios}.",
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git revision to compare with")
    parser.add_argument("--size", type=int, default=1024, help="MiB to put")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    before = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.before], check=True,
                            capture_output=True, text=True).stdout.strip()
    print("\n".join(run(before, args.size, args.runs)))


if __name__ == "__main__":
    main()
