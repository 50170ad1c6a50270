"""Planning a job (its shards and pod count) costs what the inputs' first files cost, not their size.

A job's driver decides the moduli from whether each candidate shard holds
anything; that is known once one file of the shard is seen. So planning a
job over many files reads a few of them, and still never plans a pod with
an empty shard.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pachd.executor.local import LocalExecutor
from pachd.pfs import Pfs
from pachd.pfs.files import FileHeader, PutItem
from pachd.pps.driver import JobDriver
from pachd.pps.jobs import Jobs
from pachd.pps.specs import MAP, Incremental, JobInput, JobRecord, Method, Parallelism, Partition, Transform
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.sqlite import SqliteKV

FILES = 2000


class Counted:
    """Counts the files every walk of the PFS files yields (planning's reads)."""

    def __init__(self, pfs: Pfs) -> None:
        self.seen = 0
        walk = pfs.files.walk

        async def counted(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            async for item in walk(*args, **kwargs):
                self.seen += 1
                yield item

        pfs.files.walk = counted  # type: ignore[method-assign]


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Pfs, Jobs, JobDriver]]:
    kv = await SqliteKV.open(tmp_path / "kv.db")
    pfs = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)
    jobs = Jobs(kv=kv, pfs=pfs)
    executor = LocalExecutor(root=tmp_path / "pods", pachd_address="127.0.0.1:1", shim="job-shim", base_env={})
    driver = JobDriver(kv=kv, pfs=pfs, jobs=jobs, executor=executor, default_image="")
    await pfs.repos.create("data", ())
    await pfs.repos.create("out", ("data",))
    yield pfs, jobs, driver
    await kv.close()


async def committed(pfs: Pfs, files: int) -> str:
    commit = await pfs.commits.start("data", "master", ())

    async def items() -> AsyncIterator[PutItem]:
        for i in range(files):
            yield FileHeader("data", commit.id, f"/d{i % 20}/f{i}")
            yield b"%d\n" % i

    await pfs.files.put(items())
    await pfs.commits.finish("data", commit.id)
    return commit.id


async def planned(pfs: Pfs, jobs: Jobs, driver: JobDriver, commit: str, pods: int,
                  method: Method = MAP) -> JobRecord:
    job = JobRecord(f"job{pods}{method.partition.name}", "", 0, Transform(cmd=("true",)), Parallelism(constant=pods),
                    (JobInput("data", commit, method),), "out", time.time())
    assert await jobs.create(job)
    output = await pfs.commits.start("out", job.id, [("data", commit)], new_branch=True)
    job = await jobs.update(job.id, lambda j: dataclasses.replace(j, output_commit=output.id))
    return await driver._plan(job)


@pytest.mark.parametrize("pods", [1, 2, 4])
async def test_planning_a_job_over_many_files_reads_a_few_of_them(
        stores: tuple[Pfs, Jobs, JobDriver], pods: int) -> None:
    pfs, jobs, driver = stores
    commit = await committed(pfs, FILES)
    counted = Counted(pfs)
    job = await planned(pfs, jobs, driver, commit, pods)
    assert job.shard_moduli == (pods,) and job.pod_count == pods
    assert counted.seen < FILES / 20


async def test_a_shard_that_would_be_empty_is_still_never_planned(stores: tuple[Pfs, Jobs, JobDriver]) -> None:
    pfs, jobs, driver = stores
    commit = await committed(pfs, 3)  # three top-level directories: at most three file shards hold anything
    reduce = Method(Partition.FILE, Incremental.NONE)
    job = await planned(pfs, jobs, driver, commit, 8, reduce)
    assert 1 <= job.pod_count <= 3
    for index in range(job.pod_count):
        claim = await jobs.claim(job.id, index=index, pod_name=f"pod{index}")
        shard = claim.mounts[0].shard
        assert [p async for p, _ in pfs.files.walk("data", commit, shard=shard)]
