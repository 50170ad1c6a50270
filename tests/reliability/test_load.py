"""Load: many concurrent writers, readers and listers on one pachd; a chain of
pipelines under a stream of input commits. Every byte written is read back,
no request fails, pachd's memory stays bounded, no job is lost or repeated.

The full-size chain (100 input commits) is behind the `stress` marker
(`make stress`); the default run uses 20.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable

import pytest

from pachyderm_client import Client, NotFoundError
from pachyderm_client.proto import pps_pb2
from tests.support.memory import process_memory
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, pipeline

CLIENTS = 50
FILES_PER_CLIENT = 200
READERS = 8
PEAK_RSS_LIMIT = 1 << 30  # pachd must stay well under this while serving the load


def content(client_no: int, file_no: int, where: str) -> bytes:
    """Deterministic, mostly distinct file contents of 1-16 KiB."""
    seed = hashlib.sha256(f"{where}/{client_no}/{file_no}".encode()).digest()
    return seed * (32 + (file_no * 37 + client_no) % 480)


def run_threads(targets: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as err:  # noqa: BLE001 - collected for the test to report
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_fifty_clients_write_read_and_list_at_once(own_pachd: PachdProcess) -> None:
    address = own_pachd.address
    with Client(address) as setup:
        setup.create_repo("shared")
        shared = setup.start_commit("shared")
        for n in range(CLIENTS):
            setup.create_repo(f"own{n}")
    writing = threading.Event()
    writing.set()
    reads = [0]

    def writer(n: int) -> Callable[[], None]:
        def write() -> None:
            with Client(address) as client:
                ours = [(f"client{n}/f{i}", content(n, i, "shared")) for i in range(FILES_PER_CLIENT)]
                for start in range(0, FILES_PER_CLIENT, 50):  # several streams, interleaved with the others
                    client.put_files(("shared", shared.id), ours[start:start + 50])
                with client.commit(f"own{n}") as own:
                    client.put_files((f"own{n}", own.id),
                                     [(f"f{i}", content(n, i, "own")) for i in range(FILES_PER_CLIENT)])
        return write

    def reader(seed: int) -> Callable[[], None]:
        def read() -> None:
            rng = random.Random(seed)
            with Client(address) as client:
                while writing.is_set():
                    n = rng.randrange(CLIENTS)
                    try:
                        client.list_file(("shared", shared.id), f"client{n}" if rng.random() < 0.9 else "/")
                    except NotFoundError:  # that client has not written yet
                        pass
                    client.list_repo()
                    for info in client.list_commit([(f"own{n}", "")]):
                        if info.HasField("finished"):
                            i = rng.randrange(FILES_PER_CLIENT)
                            assert client.get_file_bytes((f"own{n}", info.commit.id), f"f{i}") == content(n, i, "own")
                            reads[0] += 1
        return read

    errors: list[BaseException] = []

    def all_writers() -> None:
        try:
            errors.extend(run_threads([writer(n) for n in range(CLIENTS)]))
        finally:
            writing.clear()

    started = time.monotonic()
    errors += run_threads([all_writers, *(reader(seed) for seed in range(READERS))])
    elapsed = time.monotonic() - started
    assert errors == [], f"{len(errors)} requests failed, the first: {errors[0]!r}"

    with Client(address) as client:
        client.finish_commit(("shared", shared.id))
        listed = {f.file.path for f in client.walk_files(("shared", shared.id))}
        assert len(listed) == CLIENTS * FILES_PER_CLIENT

    def check(n: int) -> Callable[[], None]:
        def read_back() -> None:
            with Client(address) as reader:
                for i in range(FILES_PER_CLIENT):
                    assert reader.get_file_bytes(("shared", shared.id), f"client{n}/f{i}") == content(n, i, "shared")
                    assert reader.get_file_bytes((f"own{n}", "master/0"), f"f{i}") == content(n, i, "own")
        return read_back

    with Client(address) as client:
        assert run_threads([check(n) for n in range(CLIENTS)]) == []
        total = sum(len(content(n, i, where)) for n in range(CLIENTS) for i in range(FILES_PER_CLIENT)
                    for where in ("shared", "own"))
        assert client.inspect_repo("shared").size_bytes == sum(
            len(content(n, i, "shared")) for n in range(CLIENTS) for i in range(FILES_PER_CLIENT))
    assert own_pachd.process is not None
    peak = process_memory(own_pachd.process.pid, "VmHWM")
    print(f"\nload: {CLIENTS} clients x {FILES_PER_CLIENT} files x 2 commits ({total / 2**20:.0f} MiB) "
          f"with {READERS} readers ({reads[0]} reads checked) in {elapsed:.1f} s; pachd peak RSS {peak / 2**20:.0f} MiB")
    assert peak < PEAK_RSS_LIMIT


CHAIN = 5


def chain_of_pipelines(client: Client, commits: int, timeout: float) -> None:
    """data -> p1 -> ... -> p5, each copying its input's new files; `commits` input commits."""
    client.create_repo("data")
    upstream = "data"
    for p in range(1, CHAIN + 1):
        script = f"for f in /pfs/{upstream}/*; do cp $f /pfs/out/; done"
        client.create_pipeline(pipeline(f"p{p}", script, [(upstream, MAP)]))
        upstream = f"p{p}"
    for n in range(commits):
        with client.commit("data") as c:
            client.put_file(("data", c.id), f"f{n:03}", f"{n}\n".encode())
    last = client.flush_commit([("data", f"master/{commits - 1}")], timeout=timeout)
    final = next(info for info in last if info.commit.repo.name == f"p{CHAIN}")
    assert sorted(f.file.path for f in client.list_file((f"p{CHAIN}", final.commit.id))) == [
        f"/f{n:03}" for n in range(commits)]
    for p in range(1, CHAIN + 1):
        outputs = client.list_commit([(f"p{p}", "")])
        assert len(outputs) == commits, f"p{p} has {len(outputs)} output commits"
        assert all(o.HasField("finished") and not o.cancelled for o in outputs)
        jobs = client.list_job(f"p{p}")
        assert len(jobs) == commits and all(j.state == pps_pb2.JOB_SUCCESS for j in jobs)
    for n in range(commits):  # provenance: each input commit has exactly one output in every repo downstream
        downstream = client.list_commit([(f"p{p}", "") for p in range(1, CHAIN + 1)], provenance=[("data", f"master/{n}")])
        assert sorted(info.commit.repo.name for info in downstream) == [f"p{p}" for p in range(1, CHAIN + 1)]
        newest = next(info for info in downstream if info.commit.repo.name == f"p{CHAIN}")
        assert client.get_file_bytes((f"p{CHAIN}", newest.commit.id), f"f{n:03}") == f"{n}\n".encode()


def test_a_chain_of_five_pipelines_under_twenty_commits(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        chain_of_pipelines(client, 20, timeout=300)


@pytest.mark.stress
def test_a_chain_of_five_pipelines_under_a_hundred_commits(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        chain_of_pipelines(client, 100, timeout=1800)
