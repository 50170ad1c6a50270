"""A job resumes from wherever a crash stopped its driver.

Each test writes the stored state exactly as a crash (pachd killed -9, or
the replica driving the job dying) leaves it between two steps of the job's
driver, using the PFS and job objects on the data dir of a stopped pachd;
then it starts a real pachd on that data dir and checks that the job ends
as it would have without the crash: SUCCESS (or EMPTY), its output commit
finished and not cancelled, each pod's shard in it exactly once, one live
output commit for the input commit, and the consistency checker clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachd.check import check_stores
from pachd.config import PachdConfig
from pachd.pfs import Pfs
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.records import CommitKey
from pachd.pps.jobs import Jobs
from pachd.pps.specs import JobInput, JobRecord, JobState, Parallelism, PodRecord, Transform
from pachd.storage import open_block_store, open_kv
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.beacon import Beacon
from tests.support.etcd import EtcdServer
from tests.support.pachd import PachdProcess
from tests.pps.test_failures import _pod_pids
from tests.support.pipelines import REDUCE, pipeline
from tests.support.wait import wait_until

TIMEOUT = 90
COPY = Transform(cmd=("sh",), stdin=("cat /pfs/data/f >> /pfs/out/f",))
Step = Callable[["Stores", JobRecord], Awaitable[None]]


@dataclasses.dataclass
class Stores:
    """The domain objects over a stopped pachd's stores."""

    pfs: Pfs
    jobs: Jobs


@dataclasses.dataclass
class Site:
    """A data dir (and an etcd, for the etcd backend) that a pachd will be started on."""

    data_dir: Path
    etcd: str

    @property
    def config(self) -> PachdConfig:
        return PachdConfig(data_dir=self.data_dir, etcd_address=self.etcd)

    async def stores(self) -> AsyncIterator[Stores]:
        kv = await open_kv(self.config)
        blocks = await open_block_store(self.config)
        try:
            pfs = Pfs(kv=kv, blocks=blocks)
            yield Stores(pfs, Jobs(kv=kv, pfs=pfs))
        finally:
            await blocks.close()
            await kv.close()


@pytest.fixture(params=["sqlite", "etcd"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    etcd = EtcdServer(tmp_path / "etcd").start() if request.param == "etcd" else None
    (tmp_path / "data").mkdir()
    yield Site(tmp_path / "data", etcd.address if etcd else "")
    if etcd is not None:
        etcd.stop()


async def put(pfs: Pfs, repo: str, commit_id: str, path: str, data: bytes) -> None:
    async def items() -> AsyncIterator[PutItem]:
        yield FileHeader(repo, commit_id, path)
        yield data

    await pfs.files.put(items())


async def committed(pfs: Pfs, repo: str, path: str, data: bytes) -> str:
    """A finished commit on master holding `path` (nothing if `data` is empty)."""
    commit = await pfs.commits.start(repo, "master", ())
    if data:
        await put(pfs, repo, commit.id, path, data)
    await pfs.commits.finish(repo, commit.id)
    return commit.id


async def setup(stores: Stores, job_id: str, data: bytes, parent: str = "") -> JobRecord:
    """Repos `data` and `result`, one input commit, and the job's record as the controller writes it."""
    pfs = stores.pfs
    if not parent:
        await pfs.repos.create("data", [])
        await pfs.repos.create("result", ["data"])
    commit_id = await committed(pfs, "data", "/f", data)
    job = JobRecord(job_id, "", 0, COPY, Parallelism(constant=1), (JobInput("data", commit_id),), "result",
                    time.time(), parent=parent)
    assert await stores.jobs.create(job)
    return job


def provenance(job: JobRecord) -> list[tuple[str, str]]:
    return [(i.repo, i.commit) for i in job.inputs]


async def start_output(stores: Stores, job: JobRecord) -> str:
    """The driver's first step: the output commit, not yet recorded in the job."""
    commits = stores.pfs.commits
    if job.parent:
        parent_output = (await stores.jobs.get(job.parent))[0].output_commit
        return (await commits.start(job.output_repo, parent_output, provenance(job))).id
    return (await commits.start(job.output_repo, job.id, provenance(job), new_branch=True)).id


async def planned(stores: Stores, job: JobRecord) -> JobRecord:
    """Output started and recorded, one pod planned."""
    output = await start_output(stores, job)
    return await stores.jobs.update(job.id, lambda j: dataclasses.replace(
        j, output_commit=output, shard_moduli=(1,), pods=(PodRecord(),)))


async def pod_wrote(stores: Stores, job: JobRecord, data: bytes) -> str:
    """A pod (since gone) claimed index 0 and wrote its output into its commit."""
    claim = await stores.jobs.claim(job.id, index=0, pod_name="gone-0")
    pod_commit = claim.job.pods[0].commit
    await put(stores.pfs, job.output_repo, pod_commit, "/f", data)
    return pod_commit


async def pods_done(stores: Stores, job: JobRecord, data: bytes) -> JobRecord:
    await planned(stores, job)
    await pod_wrote(stores, job, data)
    return await stores.jobs.report(job.id, 0, success=True, pod_name="gone-0")


async def squashed(stores: Stores, job: JobRecord, data: bytes) -> JobRecord:
    """Every pod reported and their commits were squashed into the open output commit."""
    done = await pods_done(stores, job, data)
    await stores.pfs.squash.squash(done.output_repo, [done.pods[0].commit], done.output_commit, replace=True)
    return done


def output_key(job: JobRecord) -> CommitKey:
    branch, number = job.output_commit.split("/")
    return (job.output_repo, branch, int(number))


# -- the crash points ---------------------------------------------------------------


async def crash_after_output_started(stores: Stores, job: JobRecord) -> None:
    await start_output(stores, job)


async def crash_after_pod_commit_made(stores: Stores, job: JobRecord) -> None:
    """The claim made the pod's commit but its record of the claim never landed."""
    job = await planned(stores, job)
    await stores.jobs._pod_commit(job, 0, 1)


async def crash_after_pod_commit_finished(stores: Stores, job: JobRecord) -> None:
    """FinishJob finished the pod's commit, then pachd died before marking the pod done."""
    job = await planned(stores, job)
    pod_commit = await pod_wrote(stores, job, b"one\n")
    await stores.pfs.commits.finish(job.output_repo, pod_commit)


async def crash_after_pods_reported(stores: Stores, job: JobRecord) -> None:
    await pods_done(stores, job, b"one\n")


async def crash_mid_squash(stores: Stores, job: JobRecord) -> None:
    await squashed(stores, job, b"one\n")


async def crash_while_output_finishing(stores: Stores, job: JobRecord) -> None:
    """Squashed, and the output commit marked finishing, but its tree never stored."""
    done = await squashed(stores, job, b"one\n")
    await stores.pfs.commits.update(output_key(done), lambda c: dataclasses.replace(c, finishing=True))


async def crash_after_output_finished(stores: Stores, job: JobRecord) -> None:
    """Squashed and finished; the job's state never set."""
    done = await squashed(stores, job, b"one\n")
    await stores.pfs.commits.finish(done.output_repo, done.output_commit)


CRASHES = [crash_after_output_started, crash_after_pod_commit_made, crash_after_pod_commit_finished,
           crash_after_pods_reported, crash_mid_squash, crash_while_output_finishing, crash_after_output_finished]


@contextlib.contextmanager
def resumed(site: Site, arrange: Callable[[Stores], Awaitable[None]]) -> Iterator[Client]:
    """Arranges the stores as a crash left them, starts pachd on them and yields a client;
    afterwards stops pachd and checks its stores."""

    async def run() -> None:
        async for stores in site.stores():
            await arrange(stores)

    asyncio.run(run())
    server = PachdProcess(site.data_dir, etcd=site.etcd).start()
    try:
        with Client(server.address) as client:
            yield client
    finally:
        server.stop()
    assert asyncio.run(check_stores(site.config, verify_data=True)) == []


def assert_one_live_output(client: Client, repo: str, input_commit: tuple[str, str]) -> pfs_pb2.CommitInfo:
    outputs = [c for c in client.list_commit([(repo, "")], provenance=[input_commit])
               if c.HasField("finished") and not c.cancelled]
    assert len(outputs) == 1, outputs
    return outputs[0]


@pytest.mark.parametrize("crash", CRASHES, ids=[c.__name__ for c in CRASHES])
def test_the_job_finishes_after_a_crash(site: Site, crash: Step) -> None:
    async def arrange(stores: Stores) -> None:
        await crash(stores, await setup(stores, "job1", b"one\n"))

    with resumed(site, arrange) as client:
        job = client.inspect_job("job1", block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS
        output = assert_one_live_output(client, "result", ("data", "master/0"))
        assert output.commit.id == job.output_commit.id
        assert client.get_file_bytes(("result", output.commit.id), "f") == b"one\n"
        # ...and a pipeline downstream of the output runs on it.
        client.create_pipeline(pipeline("after", "cp -r /pfs/result/. /pfs/out/", [("result", REDUCE)]))
        flushed = client.flush_commit([("data", "master/0")], timeout=TIMEOUT)
        after = next(c for c in flushed if c.commit.repo.name == "after")
        assert client.get_file_bytes(("after", after.commit.id), "f") == b"one\n"
        assert [j.state for j in client.list_job("after")] == [pps_pb2.JOB_SUCCESS]


def test_a_job_on_a_parent_resumes_its_output_after_the_parent_output(site: Site) -> None:
    """The output commit was started next after the parent job's output, then pachd died."""

    async def arrange(stores: Stores) -> None:
        parent = await setup(stores, "job0", b"zero\n")
        done = await pods_done(stores, parent, b"zero\n")
        await stores.pfs.squash.squash("result", [done.pods[0].commit], done.output_commit, replace=True)
        await stores.pfs.commits.finish("result", done.output_commit)
        await stores.jobs.update("job0", lambda j: dataclasses.replace(j, state=JobState.SUCCESS,
                                                                        finished=time.time()))
        await start_output(stores, await setup(stores, "job1", b"one\n", parent="job0"))

    with resumed(site, arrange) as client:
        job = client.inspect_job("job1", block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS
        assert job.output_commit.id == "job0/1"  # the commit started before the crash
        assert client.get_file_bytes(("result", job.output_commit.id), "f") == b"zero\none\n"
        assert_one_live_output(client, "result", ("data", "master/1"))


def test_an_empty_job_whose_output_was_finished_ends_empty(site: Site) -> None:
    async def arrange(stores: Stores) -> None:
        job = await setup(stores, "job1", b"")
        output = await start_output(stores, job)
        await stores.jobs.update(job.id, lambda j: dataclasses.replace(j, output_commit=output))
        await stores.pfs.commits.finish("result", output)

    with resumed(site, arrange) as client:
        assert client.inspect_job("job1", block_state=True, timeout=TIMEOUT).state == pps_pb2.JOB_EMPTY
        assert_one_live_output(client, "result", ("data", "master/0"))


def test_pods_killed_by_restarts_do_not_use_up_the_restarts_of_their_index(tmp_path: Path) -> None:
    """pachd killed three times while a job's pod runs (each restart kills the pod it left),
    then the pod itself crashes once: that is its first crash, so it is replaced and the job succeeds."""
    beacon = Beacon()
    script = f"""
{beacon.command('started')}
{beacon.command('gate')}
cp /pfs/data/f /pfs/out/f
"""
    server = PachdProcess(tmp_path / "data").start()
    try:
        with Client(server.address) as client:
            client.create_repo("data")
            client.create_pipeline(pipeline("slow", script, [("data", REDUCE)]))
            with client.commit("data") as c:
                client.put_file(("data", c.id), "f", b"x\n")
        for attempt in range(1, 4):
            beacon.wait_hits("started", attempt, timeout=TIMEOUT)
            server.kill()
            server.start()
        beacon.wait_hits("started", 4, timeout=TIMEOUT)
        with Client(server.address) as client:
            job_id = client.list_job("slow")[0].job.id
            for pid in _pod_pids(server.data_dir, job_id):
                os.kill(pid, signal.SIGKILL)
            beacon.wait_hits("started", 5, timeout=TIMEOUT)
            beacon.open("gate")
            job = client.inspect_job(job_id, block_state=True, timeout=TIMEOUT)
            assert job.state == pps_pb2.JOB_SUCCESS
            assert client.get_file_bytes(("slow", job.output_commit.id), "f") == b"x\n"
    finally:
        server.stop()
        beacon.close()


def test_a_pod_crashing_past_its_restarts_still_fails_the_job(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("stuck", "sleep 600", [("data", REDUCE)]))
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", b"x\n")
        wait_until(lambda: client.list_job("stuck"), what="the job")
        job_id = client.list_job("stuck")[0].job.id
        killed: set[int] = set()

        def kill_next() -> bool:
            for pid in set(_pod_pids(own_pachd.data_dir, job_id)) - killed:
                killed.add(pid)
                os.kill(pid, signal.SIGKILL)
            return len(killed) == 4  # the first pod and its 3 replacements

        wait_until(kill_next, timeout=TIMEOUT, what="four pods to kill")
        job = client.inspect_job(job_id, block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_FAILURE
        assert b"pachd | job failed: pod 0: killed by signal 9" in b"".join(client.get_logs(job_id))
        [failure] = client.get_failures([job_id])  # the pod that gave up, by index and name; no code's exit
        assert failure.pod_index == 0 and failure.pod_name and not failure.HasField("exit_code")
