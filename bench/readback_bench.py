"""Reading a large file back over the gRPC stream, beside a bare gRPC stream of the same file.

    python -m bench.readback_bench [--mib N] [--rounds N] [--before REV]

pachctl get-file with PACH_LOCAL_FASTPATH=0 (the stream, as from another machine)
into a regular file, and with --before, the pachctl and pachd of git revision REV (extracted, in a pachd of its own), interleaved
round after round with bench/grpc_stream.py's `receive` of the same bytes (a
server-streaming grpc.aio method sending 2 MiB messages, a sync client writing them
out): the bound one Python gRPC stream sets. Wall time min / median, and the median
CPU seconds of the client and of the server (pachd, or the bare server) apart.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from bench.common import ROOT, children_cpu, extract_build, process_cpu, scratch
from pachyderm_client import Client
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port


def _measure(action: Callable[[], object], server_pid: int) -> tuple[float, float, float]:
    """(wall s, client CPU s, server CPU s) of one action."""
    client, server = children_cpu(), process_cpu(server_pid)
    start = time.perf_counter()
    action()
    wall = time.perf_counter() - start
    return wall, children_cpu() - client, process_cpu(server_pid) - server


def _make(path: Path, mib: int) -> None:
    line = b"".join(b"%07d the quick brown fox jumps over the lazy dog\n" % n for n in range(16384))
    with open(path, "wb") as handle:
        for _ in range(mib * 1024 * 1024 // len(line)):
            handle.write(line)
        handle.write(line[: mib * 1024 * 1024 % len(line)])


def _pachd(stack: ExitStack, root: Path, source: Path, build: tuple[Path, Path] | None) -> PachdProcess:
    """A pachd (of `build`, or this checkout's) holding the file as big/master/0."""
    tree, python = build if build else (None, None)
    server = PachdProcess(root / ("pachd-before" if build else "pachd"), source=tree, python=python).start()
    stack.callback(server.stop)
    with Client(server.address) as client:
        client.create_repo("big")
        with client.commit("big") as commit, open(source, "rb") as handle:
            client.put_file(commit, "big.bin", handle)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", default="", help="git revision to compare with, side by side")
    args = parser.parse_args()
    loads = [os.getloadavg()[0]]
    # Not under /tmp, as the other benchmarks' builds (bench/common.py: extract_build).
    with scratch() as root, tempfile.TemporaryDirectory(prefix=".bench-builds-", dir=ROOT) as builds, \
            ExitStack() as stack:
        source, out = root / "big.bin", root / "out.bin"
        _make(source, args.mib)
        port = free_port()
        bare = subprocess.Popen([sys.executable, "-m", "bench.grpc_stream", "serve", str(port)], cwd=ROOT,
                                stdout=subprocess.PIPE)
        stack.callback(bare.wait)
        stack.callback(bare.terminate)
        assert bare.stdout is not None and bare.stdout.readline().strip() == b"serving"

        def get(server: PachdProcess, python: Path, tree: Path | None) -> Callable[[], None]:
            env = {**os.environ, "ADDRESS": server.address, "PACH_LOCAL_FASTPATH": "0"}

            def run() -> None:
                with open(out, "wb") as handle:
                    subprocess.run([str(python), "-m", "pachctl.main", "-q", "get-file", "big", "master/0",
                                    "big.bin"], check=True, stdout=handle, env=env, cwd=tree)
            return run

        def receive() -> None:
            subprocess.run([sys.executable, "-m", "bench.grpc_stream", "receive", f"127.0.0.1:{port}",
                            str(source), str(out)], check=True, cwd=ROOT)

        sides: list[tuple[str, Callable[[], None], int]] = [("bare gRPC stream (receive)", receive, bare.pid)]
        if args.before:
            build = extract_build(args.before, Path(builds) / "before")
            old = _pachd(stack, root, source, build)
            sides.append((f"pachctl get-file at {args.before}", get(old, build[1], build[0]),
                          old.process.pid))  # type: ignore[union-attr]
        server = _pachd(stack, root, source, None)
        sides.append(("pachctl get-file", get(server, Path(sys.executable), None),
                      server.process.pid))  # type: ignore[union-attr]
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in sides}
        for round_ in range(args.rounds):
            for name, action, pid in sides[round_ % len(sides):] + sides[: round_ % len(sides)]:
                results[name].append(_measure(action, pid))
                if not filecmp.cmp(source, out, shallow=False):
                    raise SystemExit(f"{name}: the bytes written differ from the file's")
                out.unlink()
                loads.append(os.getloadavg()[0])
        print(f"| reading {args.mib} MiB back, {args.rounds} rounds (load {min(loads):.1f}-{max(loads):.1f}) "
              "| wall min / median | client CPU | server CPU |")
        print("|---|---|---|---|")
        for name, runs in results.items():
            walls = [w for w, _, _ in runs]
            print(f"| {name} | {min(walls):.2f} / {statistics.median(walls):.2f} s "
                  f"| {statistics.median(c for _, c, _ in runs):.2f} s "
                  f"| {statistics.median(s for _, _, s in runs):.2f} s |")


if __name__ == "__main__":
    main()
