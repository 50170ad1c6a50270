"""Faults: pachd killed mid-squash (a user's and a job's) and mid delete-pipeline, the etcd server
killed and restarted under a running pachd, the block store (GCS, S3, Azure)
gone in the middle of an upload. After each, pachd carries on, every finished commit reads
back byte for byte as before (compared by content hash), open commits can be
finished or cancelled, nothing is duplicated, and the consistency checker
(pachd/check.py) finds nothing wrong with the metadata or the blocks.

Other faults are tested where their feature lives:
kill -9 during put-file (tests/pfs/test_durability.py), during a job and a pod
killed mid-shard (tests/pps/test_failures.py), a replica killed mid-job
(tests/cluster/test_replicas.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest

from pachyderm_client import Client, UnavailableError
from pachd.check import check_stores
from pachd.config import PachdConfig
from pachd.pps import keys as pps_keys
from pachd.pps.specs import decode_pipeline, encode
from pachd.storage import open_kv
from pachd.storage.kv import Put
from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc, pps_pb2
from tests.support.azurite import ACCOUNT as AZURE_ACCOUNT
from tests.support.azurite import KEY as AZURE_KEY
from tests.support.azurite import Azurite
from tests.support.etcd import EtcdServer
from tests.support.gcs import GcsEmulator
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.support.wait import wait_until

TIMEOUT = 120
FILES = 6_000  # per commit of the squash test
Snapshot = dict[str, dict[str, str]]  # "repo/commit" -> path -> sha256 of its content


def snapshot(client: Client, every: int = 1) -> Snapshot:
    """The content hash of every file of every finished commit (of every
    `every`-th file, and the size of all, for commits of many thousand files)."""
    seen: Snapshot = {}
    for repo in client.list_repo():
        name = repo.repo.name
        for info in client.list_commit([(name, "")]):
            if info.HasField("finished") and not info.cancelled:
                listed = sorted(client.walk_files((name, info.commit.id)), key=lambda f: f.file.path)
                seen[f"{name}/{info.commit.id}"] = {
                    f.file.path: hashlib.sha256(client.get_file_bytes((name, info.commit.id), f.file.path)).hexdigest()
                    if n % every == 0 else str(f.size_bytes)
                    for n, f in enumerate(listed)
                }
    return seen


def assert_consistent(server: PachdProcess, **config: str) -> None:
    """Stops pachd, then checks all its metadata and re-hashes every block."""
    server.stop()
    settings = PachdConfig(data_dir=server.data_dir, etcd_address=server.etcd, **config)  # type: ignore[arg-type]
    assert asyncio.run(check_stores(settings, verify_data=True)) == []


def files(prefix: str, count: int) -> list[tuple[str, bytes]]:
    return [(f"{prefix}/{i:05}", f"{prefix} {i}\n".encode()) for i in range(count)]


def kill_when(action: Callable[[], object], kill: Callable[[], None], ready: Callable[[], bool]) -> BaseException | None:
    """Runs `action` in a thread and kills once `ready()` holds; returns what the action raised."""
    outcome: list[BaseException | None] = [None]

    def run() -> None:
        try:
            action()
        except BaseException as err:  # noqa: BLE001 - reported to the test
            outcome[0] = err

    worker = threading.Thread(target=run)
    worker.start()
    wait_until(lambda: ready() or not worker.is_alive(), timeout=TIMEOUT, what="the moment to kill")
    kill()
    worker.join(timeout=TIMEOUT)
    return outcome[0]


def test_pachd_killed_during_squash_commit(own_pachd: PachdProcess) -> None:
    """Squashing 12,000 files writes their diffs in hundreds of transactions; pachd dies
    as soon as the target commit shows the first of them."""
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_files(("data", c.id), files("batch0", FILES))
        side = client.fork_commit("data", c.id, "side")  # side/0, open
        client.put_files(("data", side.id), files("batch1", FILES))
        client.finish_commit(("data", side.id))
        with client.commit("data", "side") as c:
            client.put_files(("data", c.id), files("batch2", FILES))
        before = snapshot(client, every=100)
        target = client.start_commit("data", "master")
        with Client(own_pachd.address) as watcher:
            failure = kill_when(lambda: client.squash_commit(["data/side/0", "data/side/1"], target),
                                own_pachd.kill, lambda: watcher.inspect_commit(("data", target.id)).size_bytes > 0)
    assert isinstance(failure, UnavailableError), f"the squash should have been cut short by the kill: {failure!r}"
    own_pachd.start()
    with Client(own_pachd.address) as client:
        assert snapshot(client, every=100) == before
        assert not client.inspect_commit(("data", target.id)).HasField("finished")
        client.cancel_commit(("data", target.id))  # a half-done squash is cleanly cancellable
        # ...and the squash done again from scratch (beside the cancelled commit, whose
        # children would be cancelled too) is whole.
        again = client.fork_commit("data", "master/0", "again")
        client.squash_commit(["data/side/0", "data/side/1"], again)
        client.finish_commit(("data", again.id))
        assert not client.inspect_commit(("data", again.id)).cancelled
        squashed = {f.file.path for f in client.walk_files(("data", again.id))}
        assert squashed == {f"/{path}" for n in range(3) for path, _ in files(f"batch{n}", FILES)}
        assert client.get_file_bytes(("data", again.id), "batch2/00042") == b"batch2 42\n"
        assert client.inspect_commit(("data", again.id)).size_bytes == sum(
            len(data) for n in range(3) for _, data in files(f"batch{n}", FILES))
    assert_consistent(own_pachd)


def test_pachd_killed_while_a_job_squashes_its_pods_output(own_pachd: PachdProcess) -> None:
    """Four pods write 2,000 files each; pachd dies as the last of them reports,
    while their commits are squashed into the job's output."""
    script = "for i in $(seq 2000); do echo $i > /pfs/out/$PACH_POD_INDEX-$i; done"
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("wide", script, [("data", MAP)], parallelism=4))
        with client.commit("data") as c:
            client.put_files(("data", c.id), files("in", 400))
        wait_until(lambda: own_pachd.logs().count("FinishJob") >= 4, timeout=TIMEOUT, what="every pod to report")
        own_pachd.kill()
    own_pachd.start()
    with Client(own_pachd.address) as client:
        job = client.inspect_job(client.list_job("wide")[0].job.id, block_state=True, timeout=TIMEOUT)
        assert job.state == pps_pb2.JOB_SUCCESS
        written = [f.file.path for f in client.walk_files(("wide", job.output_commit.id))]
        assert sorted(written) == sorted(f"/{pod}-{i}" for pod in range(4) for i in range(1, 2001))
        assert client.get_file_bytes(("wide", job.output_commit.id), "3-2000") == b"2000\n"
        assert len(client.list_job("wide")) == 1
        assert len(client.list_commit([("wide", "")])) == 1
    assert_consistent(own_pachd)


def test_pachd_killed_during_delete_pipeline(own_pachd_any: PachdProcess) -> None:
    """delete-pipeline's first transaction marks the pipeline as being deleted; pachd is killed
    right after it (the mark is made here, on the killed pachd's own store). Back up, pachd
    finishes the deletion: the pipeline and its job are gone, the job's pod is stopped, its
    output commit cancelled, and a pipeline of the same name can be made again
    (once the output repo, which stays, is deleted)."""
    server = own_pachd_any
    with Client(server.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("doomed", "sleep 617", [("data", MAP)]))
        with client.commit("data") as c:
            client.put_file(("data", c.id), "in", b"input\n")
        wait_until(lambda: [j.state for j in client.list_job("doomed")] == [pps_pb2.JOB_RUNNING],
                   timeout=TIMEOUT, what="the job to run")
        wait_until(lambda: _pods_sleeping() > 0, timeout=TIMEOUT, what="the pod to start its code")
    server.kill()
    asyncio.run(_mark_deleting(server, "doomed"))
    server.start()
    with Client(server.address) as client:
        wait_until(lambda: not client.list_pipeline() and not [
            j for j in client.list_job() if j.pipeline.name == "doomed"], timeout=TIMEOUT, what="the deletion")
        wait_until(lambda: _pods_sleeping() == 0, timeout=TIMEOUT, what="the pod to be stopped")
        outputs = client.list_commit([("doomed", "")], status=pfs_pb2.ALL)
        assert outputs and all(o.HasField("finished") and o.cancelled for o in outputs)
        client.delete_repo("doomed")  # its output repo stays, as v1.2 kept it
        client.create_pipeline(pipeline("doomed", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
        out = client.flush_commit([("data", c.id)], to_repos=["doomed"], timeout=TIMEOUT)[-1]
        assert client.get_file_bytes(("doomed", out.commit.id), "in") == b"input\n"
    assert_consistent(server)


def _pods_sleeping() -> int:
    """How many processes run the doomed pipeline's code (`sleep 617`)."""
    return sum(1 for cmdline in Path("/proc").glob("[0-9]*/cmdline") if _reads(cmdline) == b"sleep\x00617\x00")


def _reads(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""


async def _mark_deleting(server: PachdProcess, name: str) -> None:
    """Leaves `name`'s record as delete-pipeline's first transaction does."""
    kv = await open_kv(PachdConfig(data_dir=server.data_dir, etcd_address=server.etcd))
    try:
        found = await kv.get(pps_keys.pipeline(name))
        assert found is not None
        marked = replace(decode_pipeline(found.value), deleting=True)
        await kv.txn([], [Put(found.key, encode(marked))])
    finally:
        await kv.close()


@pytest.fixture
def etcd_pachd(tmp_path: Path) -> Iterator[tuple[EtcdServer, PachdProcess]]:
    etcd = EtcdServer(tmp_path / "etcd").start()
    server = PachdProcess(tmp_path / "data", etcd=etcd.address).start()
    yield etcd, server
    server.stop()
    etcd.stop()


def test_etcd_killed_and_restarted_under_a_running_pachd(etcd_pachd: tuple[EtcdServer, PachdProcess]) -> None:
    etcd, server = etcd_pachd
    with Client(server.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
        with client.commit("data") as c:
            client.put_files(("data", c.id), files("first", 100))
        client.flush_commit([("data", c.id)], timeout=TIMEOUT)
        open_commit = client.start_commit("data")
        client.put_file(("data", open_commit.id), "pending", b"written before the outage\n")
        before = snapshot(client)

        etcd.kill()
        with pytest.raises(grpc.RpcError) as caught:
            client._pfs.ListRepo(pfs_pb2.ListRepoRequest(), timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "etcd" in (caught.value.details() or "")

        etcd.start()
        wait_until(lambda: _answers(client), timeout=60, what="pachd to reconnect to etcd")
        assert snapshot(client) == before
        client.put_file(("data", open_commit.id), "after", b"written after the outage\n")
        client.finish_commit(("data", open_commit.id))
        outputs = client.flush_commit([("data", open_commit.id)], timeout=TIMEOUT)
        output = next(o for o in outputs if o.commit.repo.name == "copy")
        assert client.get_file_bytes(("copy", output.commit.id), "pending") == b"written before the outage\n"
        assert client.get_file_bytes(("copy", output.commit.id), "after") == b"written after the outage\n"
        assert len(client.list_job("copy")) == 2  # the pipeline's watch came back: one job per commit
    assert_consistent(server)


def _answers(client: Client) -> bool:
    try:
        client.list_repo()
        return True
    except Exception:  # noqa: BLE001 - still down
        return False


@dataclass(frozen=True, slots=True)
class CloudStore:
    """A block store server, and how pachd and the checker are pointed at it."""

    server: GcsEmulator | S3Server | Azurite  # stop() and start() it
    pachd_args: list[str]
    env: dict[str, str]  # for pachd, and for the checker, which reads pachd's settings
    check: dict[str, str]  # PachdConfig's store fields


def _cloud_store(kind: str, root: Path) -> CloudStore:
    if kind == "gcs":
        gcs = GcsEmulator(root / "gcs").start()
        gcs.create_bucket("faults")
        return CloudStore(gcs, ["--storage", "gcs", "--gcs-bucket", "faults"], {"STORAGE_EMULATOR_HOST": gcs.host},
                          {"storage": "gcs", "gcs_bucket": "faults"})
    if kind == "s3":
        s3 = S3Server(root / "s3").launch()
        s3.create_bucket("faults")
        return CloudStore(s3, ["--storage", "s3", "--s3-bucket", "faults"], s3.env(),
                          {"storage": "s3", "s3_bucket": "faults", "s3_endpoint": s3.endpoint,
                           "s3_region": REGION, "s3_access_key": ACCESS_KEY, "s3_secret_key": SECRET_KEY})
    azure = Azurite(root / "azurite").start()
    azure.create_container("faults")
    return CloudStore(azure, ["--storage", "azure", "--azure-container", "faults"], azure.env(),
                      {"storage": "azure", "azure_container": "faults", "azure_account": AZURE_ACCOUNT,
                       "azure_key": AZURE_KEY, "azure_endpoint": azure.endpoint})


@pytest.fixture(params=["gcs", "s3", "azure"])
def cloud_pachd(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[CloudStore, PachdProcess]]:
    """A pachd whose blocks live in a store server of its own (GCS emulator, moto's S3, Azurite)."""
    store = _cloud_store(str(request.param), tmp_path)
    server = PachdProcess(tmp_path / "data", extra_args=store.pachd_args, env=store.env).start()
    yield store, server
    server.stop()
    if isinstance(store.server, S3Server):
        store.server.shutdown()
    else:
        store.server.stop()


def test_block_store_failing_mid_upload(cloud_pachd: tuple[CloudStore, PachdProcess],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The store goes away in the middle of a put-file of many blocks (the GCS emulator and
    Azurite are stopped; moto's S3 server is cut off, keeping its objects, as in an outage)."""
    store, server = cloud_pachd
    emulator = store.server
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB that does not repeat within itself
    with Client(server.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "kept", block * 3)
        before = snapshot(client)
        commit = client.start_commit("data")

        def requests() -> Iterator[pfs_pb2.PutFileRequest]:
            yield pfs_pb2.PutFileRequest(file=pfs_pb2.File(commit=commit, path="big"), value=b"a" + block)
            for n in range(40):  # distinct 1 MiB pieces: every block is a new upload
                if n == 12:
                    emulator.stop()
                yield pfs_pb2.PutFileRequest(value=bytes([n]) * 1024 + block)

        with pytest.raises(grpc.RpcError) as caught:
            pfs_pb2_grpc.APIStub(client.channel).PutFile(requests(), timeout=TIMEOUT)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        emulator.start()
        wait_until(lambda: _answers(client), timeout=60, what="pachd to answer")
        assert snapshot(client) == before
        assert [f.file.path for f in client.list_file(("data", commit.id))] == ["/kept"]  # nothing half-written
        client.put_file(("data", commit.id), "big", block * 20)
        client.finish_commit(("data", commit.id))
        assert client.get_file_bytes(("data", commit.id), "big") == block * 20
        assert client.get_file_bytes(("data", commit.id), "kept") == block * 3
    for name, value in store.env.items():
        monkeypatch.setenv(name, value)
    assert_consistent(server, **store.check)
