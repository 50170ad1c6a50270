"""pachd's serial work for a job's pods' output, in process: both ways the code can do it.

    python -m bench.pod_output_bench [--files N] [--runs R]

Over pachd's PFS objects on SQLite (no gRPC, no pods): an input commit of N
files of 100 B in 100 directories, then for 1 and 2 pods each pod's shard
listed (files.walk, as ListFileRefs), written into its own commit
(refs.put, as PutFileRefs) and finished, and the pods' commits squashed into
the output commit (squash.finish). "by diffs": the FileRefs stored as pending
diffs and the commit finished after, the pods' commits naming themselves (so
the squash goes diff by diff); "direct": PutFileRefs with finish and pods'
commits naming the output (their trees merged). CPU seconds of the process
(SQLite's thread included), median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench.common import ROOT  # noqa: F401  (puts the checkout first on sys.path)
from pachd.pfs import Pfs
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.refs import FileRefs
from pachd.pfs.sharding import EVERYTHING, Shard
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.sqlite import SqliteKV

STEPS = ("list", "put", "finish pods", "squash")


async def _job(files: int, pods: int, direct: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        kv = await SqliteKV.open(Path(tmp) / "kv.db")
        try:
            pfs = Pfs(kv=kv, blocks=LocalBlockStore(Path(tmp) / "blocks"), shared=False)
            await pfs.repos.create("many", ())
            await pfs.repos.create("copy", ("many",))
            commit = await pfs.commits.start("many", "master", ())

            async def items() -> AsyncIterator[PutItem]:
                for i in range(files):
                    yield FileHeader("many", commit.id, f"/d{i % 100}/f{i}")
                    yield (b"%d\n" % i) * 12

            await pfs.files.put(items())
            await pfs.commits.finish("many", commit.id)
            output = await pfs.commits.start("copy", "job", [("many", commit.id)], new_branch=True)
            spent = dict.fromkeys(STEPS, 0.0)
            sources = []
            for index in range(pods):
                shard = Shard(block_number=index, block_modulus=pods) if pods > 1 else EVERYTHING
                started = time.process_time()
                listed = [FileRefs(path, refs) async for path, refs in pfs.files.walk("many", commit.id, shard=shard)]
                spent["list"] += time.process_time() - started
                started = time.process_time()
                pod = await pfs.commits.start("copy", f"pod{index}", [("many", commit.id)], archived=True,
                                              new_branch=True, squash_into=output.id if direct else "")
                await pfs.refs.put("copy", pod.id, listed, finish=direct)
                spent["put"] += time.process_time() - started
                started = time.process_time()
                if not direct:
                    await pfs.commits.finish("copy", pod.id)
                spent["finish pods"] += time.process_time() - started
                sources.append(pod.id)
            started = time.process_time()
            await pfs.squash.finish("copy", sources, output.id)
            spent["squash"] += time.process_time() - started
            return spent
        finally:
            await kv.close()


def run(files: int = 10_000, runs: int = 3) -> list[str]:
    lines = [f"pachd's work for a job's pods' output, in process, {files} files (CPU s, median of {runs}):", "",
             "| step | by diffs, 1 pod | by diffs, 2 pods | direct, 1 pod | direct, 2 pods |", "|---|---|---|---|---|"]
    found: dict[tuple[bool, int], list[dict[str, float]]] = {}
    for _ in range(runs):
        for direct in (False, True):
            for pods in (1, 2):
                found.setdefault((direct, pods), []).append(asyncio.run(_job(files, pods, direct)))
    for step in (*STEPS, "total"):
        cells = []
        for direct in (False, True):
            for pods in (1, 2):
                samples = found[direct, pods]
                values = [sum(s.values()) if step == "total" else s[step] for s in samples]
                cells.append(f"{statistics.median(values):.3f}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    return lines + [""]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    print("\n".join(run(options.files, options.runs)))
