"""`python -m bench` (make bench): runs every benchmark and writes bench/results.md."""

from __future__ import annotations

import datetime
import os
import platform
import sys

from bench import cli_bench, dvc_bench, fuse_bench, list_bench, pfs_bench, pps_bench, write_bench
from bench.common import RESULTS


def main() -> None:
    quick = "--quick" in sys.argv  # smaller sizes, to check the benchmarks themselves work
    header = [
        "# Benchmark results",
        "",
        f"Measured {datetime.date.today().isoformat()} by `make bench` on {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; pachd with the embedded defaults "
        "(SQLite metadata, blocks on the local disk), everything on loopback.",
        "",
    ]
    sections = pfs_bench.run(size=(64 << 20) if quick else (1 << 30), small_files=500 if quick else 10_000)
    sections += write_bench.run([20, 50] if quick else [100, 500], 1 if quick else 3,
                                (256 << 20) if quick else (4 << 30))
    sections += pps_bench.run(latency_runs=3 if quick else 20)
    sections += fuse_bench.run(size=(64 << 20) if quick else (1 << 30), files=500 if quick else 10_000)
    sections += list_bench.run(files=2000 if quick else 100_000)
    sections += dvc_bench.run(big=(32 << 20) if quick else (1 << 30), files=300 if quick else 10_000,
                              rounds=1 if quick else 3)
    sections += cli_bench.run(rounds=3 if quick else 10)
    text = "\n".join(header + sections)
    print(text)
    if not quick:
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
