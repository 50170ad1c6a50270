"""Readers and appending writers through one `pachctl mount` at once, while
commits arrive: after finish-commit every file is compared byte for byte with
what was written, and every read made meanwhile must have been a prefix of the
final file. A failure names its seed (FUSE_STRESS_SEED=<seed> replays the same
choices; thread timing still varies).

Writers append to a shared file (each write() whole lines, so lines stay whole
there) and to files of their own (lines split across write() calls, through
raw descriptors and Python's buffered files). Some handles stay open across
rounds and are fsynced now and then; every subprocess a thread starts flushes
all open handles of the test (fork duplicates them, exec closes them). A
client also appends to the shared file past the mount, and a feeder makes
commits in another repo, which readers find and read through the mount.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.mounts import Mount
from tests.support.pachd import PachdProcess

WRITERS = 4
READERS = 3
SHORT = 60.0  # seconds of load in `make test`
LONG = 600.0  # under the stress marker
SHARED = "shared"
APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def line(seed: int, writer: str, seq: int) -> bytes:
    """The line number `seq` of a writer: fully determined, so any reader can check it."""
    digest = hashlib.sha256(f"{seed}/{writer}/{seq}".encode()).hexdigest()
    length = 10 + int(digest[:4], 16) % 3000
    return f"{writer}:{seq}:".encode() + (digest.encode() * (length // 64 + 1))[:length] + b"\n"


def feed_content(seed: int, number: int) -> bytes:
    return b"".join(line(seed, "feed", number * 10 + i) for i in range(1 + number % 5))


@dataclass
class Run:
    seed: int
    folder: Path  # the open commit, through the mount
    mounted: Path
    deadline: float
    lines: dict[str, list[tuple[str, int]]] = field(default_factory=dict)  # file -> (writer, seq) in write order
    reads: list[tuple[str, int, str]] = field(default_factory=list)  # (file, length, sha256) seen meanwhile
    feeds_done: int = 0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def going(self) -> bool:
        return time.monotonic() < self.deadline and not self.errors

    def wrote(self, name: str, writer: str, seqs: list[int]) -> None:
        with self.lock:
            self.lines.setdefault(name, []).extend((writer, seq) for seq in seqs)


def writer(run: Run, number: int) -> None:
    rng = random.Random(f"{run.seed}/writer/{number}")
    me, own = f"w{number}", f"own{number}"
    seq = 0
    held: dict[str, int] = {}  # file -> a descriptor kept open across rounds
    try:
        while run.going():
            name = SHARED if rng.random() < 0.5 else own
            count = rng.randint(1, 4)
            seqs = list(range(seq, seq + count))
            seq += count
            data = [line(run.seed, me, s) for s in seqs]
            fd = held.pop(name, None)
            if fd is None:
                fd = os.open(run.folder / name, APPEND)
            if name == SHARED:
                for piece in data:  # one write() per line: each line lands whole
                    os.write(fd, piece)
            elif rng.random() < 0.5:
                blob = b"".join(data)
                cuts = sorted(rng.sample(range(1, len(blob)), min(3, len(blob) - 1)))
                for start, end in zip([0, *cuts], [*cuts, len(blob)]):
                    os.write(fd, blob[start:end])
            else:
                os.close(fd)
                fd = -1
                with open(run.folder / name, "ab") as buffered:
                    for piece in data:
                        buffered.write(piece)
            run.wrote(name, me, seqs)  # before close: a concurrent read may already see these
            choice = rng.random()
            if fd >= 0 and choice < 0.3:
                held[name] = fd  # kept open; later rounds write more through it
                if choice < 0.1:
                    os.fsync(fd)
            elif fd >= 0:
                os.close(fd)
            if rng.random() < 0.05:
                subprocess.run(["true"], check=True)  # fork + exec: every open handle of ours is flushed
    finally:
        for fd in held.values():
            os.close(fd)


def reader(run: Run, number: int) -> None:
    rng = random.Random(f"{run.seed}/reader/{number}")
    names = [SHARED] + [f"own{n}" for n in range(WRITERS)]
    while run.going():
        choice = rng.random()
        if choice < 0.6:
            name = rng.choice(names)
            try:
                data = (run.folder / name).read_bytes()
            except FileNotFoundError:
                continue  # not written yet
            with run.lock:
                run.reads.append((name, len(data), hashlib.sha256(data).hexdigest()))
        elif choice < 0.75:
            for entry in os.scandir(run.folder):
                entry.stat()
        elif choice < 0.85:
            subprocess.run(["ls", "-lR", str(run.mounted / "feed")], check=True, capture_output=True)
        else:
            done = run.feeds_done
            if done:
                number = rng.randrange(done)
                got = (run.mounted / "feed" / f"master-{number}" / "f").read_bytes()
                if got != b"".join(feed_content(run.seed, n) for n in range(number + 1)):  # put-file appends
                    with run.lock:
                        run.errors.append(f"feed commit master-{number} read {len(got)} wrong bytes")


def feeder(run: Run, client: Client, commit_id: str) -> None:
    """Commits in repo `feed`; appends to the shared file past the mount."""
    seq = 0
    while run.going():
        with client.commit("feed") as c:
            client.put_file(("feed", c.id), "f", feed_content(run.seed, run.feeds_done))
        run.feeds_done += 1
        data = [line(run.seed, "client", s) for s in (seq, seq + 1)]
        client.put_file(("r", commit_id), SHARED, b"".join(data))
        run.wrote(SHARED, "client", [seq, seq + 1])
        seq += 2


def guarded(run: Run, target: Callable[[], None], name: str) -> threading.Thread:
    def body() -> None:
        try:
            target()
        except BaseException as err:  # noqa: BLE001 - reported with the seed
            with run.lock:
                run.errors.append(f"{name}: {type(err).__name__}: {err}")

    thread = threading.Thread(target=body, name=name)
    thread.start()
    return thread


def check_shared(run: Run, final: bytes) -> None:
    """Lines whole, each writer's in its order, nothing missing or extra."""
    assert final.endswith(b"\n") or not final, f"seed {run.seed}: {SHARED} ends inside a line"
    found: dict[str, list[int]] = {}
    for text in final.split(b"\n")[:-1]:
        writer, seq, _ = text.split(b":", 2)
        assert text + b"\n" == line(run.seed, writer.decode(), int(seq)), \
            f"seed {run.seed}: {SHARED} holds a broken line {text[:40]!r}..."
        found.setdefault(writer.decode(), []).append(int(seq))
    expected: dict[str, list[int]] = {}
    for writer, seq in run.lines.get(SHARED, []):
        expected.setdefault(writer, []).append(seq)
    assert found == expected, f"seed {run.seed}: {SHARED} lost, repeated or reordered lines"


def stress(pachd: PachdProcess, tmp_path: Path, seconds: float) -> None:
    with Client(pachd.address) as client:
        stress_with(pachd, client, tmp_path, seconds)


def stress_with(pachd: PachdProcess, client: Client, tmp_path: Path, seconds: float) -> None:
    seed = int(os.environ.get("FUSE_STRESS_SEED") or random.SystemRandom().randrange(1 << 32))
    print(f"FUSE stress seed {seed} (FUSE_STRESS_SEED={seed} replays it)")
    client.create_repo("r")
    client.create_repo("feed")
    commit = client.start_commit("r")
    mount = Mount(pachd.address, tmp_path / "pfs")
    try:
        run = Run(seed, mount.mountpoint / "r" / commit.id.replace("/", "-"), mount.mountpoint,
                  time.monotonic() + seconds)
        threads = [guarded(run, functools.partial(writer, run, n), f"writer {n}") for n in range(WRITERS)]
        threads += [guarded(run, functools.partial(reader, run, n), f"reader {n}") for n in range(READERS)]
        threads.append(guarded(run, functools.partial(feeder, run, client, commit.id), "feeder"))
        for thread in threads:
            thread.join()
        print(f"{sum(len(w) for w in run.lines.values())} lines appended, {len(run.reads)} reads, "
              f"{run.feeds_done} commits fed")
        assert not run.errors, f"seed {seed}: {run.errors}"
        client.finish_commit(("r", commit.id))
        finals = {name: client.get_file_bytes(("r", commit.id), name) for name in run.lines}
        check_shared(run, finals[SHARED])
        for name, written in run.lines.items():
            if name != SHARED:
                expected = b"".join(line(seed, writer, seq) for writer, seq in written)
                assert finals[name] == expected, f"seed {seed}: {name} differs ({len(finals[name])} bytes, " \
                                                 f"{len(expected)} written)"
            assert (run.folder / name).read_bytes() == finals[name], f"seed {seed}: the mount shows {name} otherwise"
        for name, length, digest in run.reads:
            assert hashlib.sha256(finals[name][:length]).hexdigest() == digest, \
                f"seed {seed}: a read of {name} ({length} bytes) was not a prefix of the final file"
        assert len(run.reads) > 10 and sum(len(w) for w in run.lines.values()) > 100, f"seed {seed}: too little load"
    finally:
        mount.unmount()


def test_readers_and_appending_writers(own_pachd: PachdProcess, tmp_path: Path) -> None:
    stress(own_pachd, tmp_path, SHORT)


@pytest.mark.stress
def test_readers_and_appending_writers_long(own_pachd_any: PachdProcess, tmp_path: Path) -> None:
    stress(own_pachd_any, tmp_path, LONG)
