"""The randomized crash loop: writers and a 2-stage pipeline while pachd is killed -9.

Writers (threads, one branch of repo `in` each) start commits, put files of
random sizes (some up to several MiB, some without a trailing newline),
delete files and finish commits. A write cut short by a kill is resolved
once pachd is back, by reading the open commit (a put lands whole or not at
all); a finish is repeated until pachd says the commit is finished. Every
commit whose finish was acknowledged is recorded with the bytes of each of
its files. The pipelines `p1` (on `in`, two pods) and `p2` (on `p1`) copy
their inputs.

The loop itself (in the tests) kills a pachd at random moments; after each
restart it calls `Ledger.verify`: every acknowledged commit reads back byte
for byte, no job has FAILED, no input commit has two live outputs in a
repo. At the end `assert_outputs` waits until every acknowledged commit has
exactly one live output commit in each downstream repo.

The seed comes from CRASH_LOOP_SEED (else a fixed default) and is printed,
so a failing run is shown with what repeats it.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pachyderm_client import Client, FailedPreconditionError, NotFoundError, PachydermError
from pachyderm_client.proto import pps_pb2
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import wait_until

T = TypeVar("T")
SEED_ENV = "CRASH_LOOP_SEED"
DEFAULT_SEED = 20261201
PATHS = ("a", "b", "dir/c", "dir/sub/d")
MAX_FILE = 6 * 1024 * 1024  # a file growing past this is deleted (keeps each read-back short)
PIPELINES = ("p1", "p2")
Files = dict[str, bytes]


def seed() -> int:
    value = int(os.environ.get(SEED_ENV, DEFAULT_SEED))
    print(f"crash loop seed: {value} (repeat with {SEED_ENV}={value})")
    return value


def create_pipelines(client: Client) -> None:
    client.create_repo("in")
    client.create_pipeline(pipeline("p1", "cp -r /pfs/in/. /pfs/out/", [("in", MAP)], parallelism=2))
    client.create_pipeline(pipeline("p2", "cp -r /pfs/p1/. /pfs/out/", [("p1", MAP)]))


def payload(rng: random.Random) -> bytes:
    """Mostly small, sometimes several MiB; lines of random length, the last one sometimes unterminated."""
    size = rng.randint(1, 3 * 1024 * 1024) if rng.random() < 0.15 else rng.randint(1, 20_000)
    line = rng.randint(1, 300)
    body = bytearray(rng.randbytes(size))
    for k in range(line, size, line):
        body[k] = 0x0A
    if rng.random() < 0.5:
        body[-1] = 0x0A
    elif body[-1] == 0x0A:
        body[-1] = 0x41
    return bytes(body)


class Crashes:
    """What the loop tells the writers: the crash epoch, and when pachd answers again."""

    def __init__(self) -> None:
        self.epoch = 0
        self.up = threading.Event()
        self.up.set()
        self.stop = threading.Event()
        self.next_cycle = threading.Condition()

    def going_down(self) -> None:
        self.up.clear()
        with self.next_cycle:
            self.epoch += 1

    def back_up(self) -> None:
        self.up.set()
        with self.next_cycle:
            self.next_cycle.notify_all()


@dataclasses.dataclass
class Ledger:
    """Every acknowledged commit of `in` and the bytes of its files."""

    acknowledged: dict[str, Files] = dataclasses.field(default_factory=dict)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    errors: list[str] = dataclasses.field(default_factory=list)
    checked_reads: int = 0

    def add(self, commit_id: str, files: Files) -> None:
        with self.lock:
            self.acknowledged[commit_id] = dict(files)

    def commits(self) -> dict[str, Files]:
        with self.lock:
            return dict(self.acknowledged)

    def verify(self, client: Client, what: str) -> None:
        """Every acknowledged commit reads back byte for byte; no job FAILED; never two live outputs."""
        for commit_id, files in sorted(self.commits().items()):
            info = client.inspect_commit(("in", commit_id))
            assert info.HasField("finished") and not info.cancelled, f"{what}: in/{commit_id} is not finished"
            listed = sorted(f.file.path.lstrip("/") for f in client.walk_files(("in", commit_id)))
            assert listed == sorted(files), f"{what}: in/{commit_id} holds {listed}, not {sorted(files)}"
            for path, data in files.items():
                got = client.get_file_bytes(("in", commit_id), path)
                assert got == data, f"{what}: in/{commit_id}:{path} has {len(got)} bytes, not the {len(data)} written"
                self.checked_reads += 1
        failed = [j.job.id for name in PIPELINES for j in client.list_job(name) if j.state == pps_pb2.JOB_FAILURE]
        assert not failed, f"{what}: jobs failed: {failed}"
        for name, counts in live_outputs(client).items():
            doubled = {c: n for c, n in counts.items() if n > 1}
            assert not doubled, f"{what}: input commits with more than one live output in {name}: {doubled}"


def live_outputs(client: Client) -> dict[str, dict[str, int]]:
    """Per pipeline repo: how many live (finished, not cancelled) output commits each `in` commit has."""
    counts: dict[str, dict[str, int]] = {}
    for name in PIPELINES:
        counts[name] = {}
        for info in client.list_commit([(name, "")]):
            if info.cancelled or not info.HasField("finished"):
                continue
            for upstream in info.provenance:
                if upstream.repo.name == "in":
                    counts[name][upstream.id] = counts[name].get(upstream.id, 0) + 1
    return counts


def assert_outputs(client: Client, ledger: Ledger, timeout: float) -> int:
    """Waits until each acknowledged commit has exactly one live output in p1 and p2; returns the jobs checked."""
    wanted = set(ledger.commits())

    def caught_up() -> bool:
        counts = live_outputs(client)
        return all(wanted <= set(c) for c in counts.values())

    wait_until(caught_up, timeout=timeout, what="every acknowledged commit's outputs")
    for name, counts in live_outputs(client).items():
        assert {c: n for c, n in counts.items() if c in wanted and n != 1} == {}, name
    jobs = [j for name in PIPELINES for j in client.list_job(name)]
    wait_until(lambda: all(client.inspect_job(j.job.id).state != pps_pb2.JOB_RUNNING for j in jobs),
               timeout=timeout, what="every job to end")
    states = [client.inspect_job(j.job.id).state for j in jobs]
    assert pps_pb2.JOB_FAILURE not in states
    return len(jobs)


def run_checker(data_dir: Path, etcd: str = "", extra: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
    """`python -m pachd.check --verify-data` on a stopped pachd's stores: it must find nothing."""
    args = [sys.executable, "-m", "pachd.check", "--data-dir", str(data_dir), "--verify-data", *extra]
    if etcd:
        args += ["--etcd", etcd]
    result = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


class Writer(threading.Thread):
    """One writer on branch `branch` of `in`, through whichever address answers."""

    def __init__(self, *, branch: str, addresses: Sequence[str], crashes: Crashes, ledger: Ledger,
                 rng: random.Random, commits_per_cycle: int) -> None:
        super().__init__(name=f"writer-{branch}", daemon=True)
        self.branch = branch
        self._clients = [Client(a) for a in addresses]
        self._which = 0
        self._crashes = crashes
        self._ledger = ledger
        self._rng = rng
        self._per_cycle = commits_per_cycle
        self.files: Files = {}  # the branch head's files, as acknowledged
        self.head = ""  # the ID of the newest acknowledged commit
        self.failure: BaseException | None = None

    @property
    def client(self) -> Client:
        return self._clients[self._which]

    def run(self) -> None:
        try:
            while not self._crashes.stop.is_set():
                epoch = self._crashes.epoch
                for _ in range(self._per_cycle):
                    if self._crashes.stop.is_set():
                        return
                    self._one_commit()
                with self._crashes.next_cycle:  # this cycle's share is written: wait for the next crash
                    self._crashes.next_cycle.wait_for(
                        lambda: self._crashes.epoch != epoch and self._crashes.up.is_set() or
                        self._crashes.stop.is_set())
        except BaseException as err:  # noqa: BLE001 - reported by the test
            self.failure = err
        finally:
            for client in self._clients:
                client.close()

    def _survive(self, action: Callable[[], T], resolve: Callable[[], T | None]) -> T:
        """Runs `action`; if a crash cut it short, waits for pachd and asks `resolve` what
        happened (None: it did not happen, so `action` runs again)."""
        while True:
            answered, value = self._attempt(action)
            if answered:
                return value  # type: ignore[return-value]
            outcome = self._until_answered(resolve)
            if outcome is not None:
                return outcome

    def _until_answered(self, call: Callable[[], T]) -> T:
        while True:
            answered, value = self._attempt(call)
            if answered:
                return value  # type: ignore[return-value]

    def _attempt(self, call: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, what `call` returned), or (False, None) if a crash cut it short (then pachd
        is awaited); an error that no crash explains is raised."""
        epoch = self._crashes.epoch
        try:
            return True, call()
        except PachydermError:
            if self._crashes.epoch == epoch and self._crashes.up.is_set():
                raise
        self._await_pachd()
        return False, None

    def _await_pachd(self) -> None:
        if len(self._clients) > 1:
            self._which = (self._which + 1) % len(self._clients)  # the other replica
        else:
            self._crashes.up.wait(timeout=120)

    def _one_commit(self) -> None:
        pending = dict(self.files)
        commit_id = self._survive(lambda: self.client.start_commit("in", self.branch).id, self._started)
        for _ in range(self._rng.randint(1, 3)):
            path = self._rng.choice(PATHS)
            if path in pending and (len(pending[path]) > MAX_FILE or self._rng.random() < 0.2):
                self._survive(lambda: self.client.delete_file(("in", commit_id), path),
                              lambda: self._landed(commit_id, path, None))
                del pending[path]
            else:
                data = payload(self._rng)
                after = pending.get(path, b"") + data
                before = pending.get(path)
                self._survive(lambda: self.client.put_file(("in", commit_id), path, data),
                              lambda: self._put_landed(commit_id, path, before, after))
                pending[path] = after
        self._survive(lambda: self.client.finish_commit(("in", commit_id)), lambda: self._finished(commit_id))
        self._ledger.add(commit_id, pending)
        self.files, self.head = pending, commit_id

    # -- what a cut-short call did ------------------------------------------------

    def _started(self) -> str | None:
        """The commit a cut-short start made, if it made one (this writer alone writes its branch)."""
        try:
            head = self.client.inspect_commit(("in", self.branch))
        except NotFoundError:
            return None
        if head.commit.id == self.head:
            return None
        assert not head.HasField("finished"), f"{self.branch}: an unknown finished commit {head.commit.id}"
        return str(head.commit.id)

    def _read(self, commit_id: str, path: str) -> bytes | None:
        try:
            return self.client.get_file_bytes(("in", commit_id), path)
        except NotFoundError:
            return None

    def _landed(self, commit_id: str, path: str, expected: bytes | None) -> bool | None:
        return True if self._read(commit_id, path) == expected else None

    def _put_landed(self, commit_id: str, path: str, before: bytes | None, after: bytes) -> bool | None:
        now = self._read(commit_id, path)
        if now == after:
            return True
        assert now == before, f"{self.branch}: a cut-short put left {path} neither before nor after it"
        return None

    def _finished(self, commit_id: str) -> bool | None:
        try:
            self.client.finish_commit(("in", commit_id))
        except FailedPreconditionError:
            info = self.client.inspect_commit(("in", commit_id))
            assert info.HasField("finished") and not info.cancelled, f"{commit_id} was cancelled"
        return True


def start_writers(*, addresses: Sequence[str], crashes: Crashes, ledger: Ledger, rng: random.Random,
                  count: int = 3, commits_per_cycle: int = 1) -> list[Writer]:
    writers = [Writer(branch=f"w{k}", addresses=addresses, crashes=crashes, ledger=ledger,
                      rng=random.Random(rng.random()), commits_per_cycle=commits_per_cycle) for k in range(count)]
    for writer in writers:
        writer.start()
    return writers


def stop_writers(writers: list[Writer], crashes: Crashes) -> None:
    crashes.stop.set()
    with crashes.next_cycle:
        crashes.next_cycle.notify_all()
    for writer in writers:
        writer.join(timeout=300)
        assert not writer.is_alive(), f"{writer.name} did not stop"
        if writer.failure is not None:
            raise writer.failure
