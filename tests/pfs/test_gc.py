"""Garbage collection: blocks no commit references are reclaimed, and nothing else.

Uploads whose client gave up, deleted open commits and deleted repos leave
blocks behind; `pachctl garbage-collect` removes them (and the checker
reports them), while every block a commit refers to, or an upload still in
flight is writing, stays.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

MIB = 1 << 20
LINES = b"".join(b"%015d\n" % i for i in range(MIB // 16))  # 1 MiB of lines


def _lines(mib: int, tag: bytes = b"") -> Iterator[bytes]:
    for n in range(mib):
        yield tag + b"%07d\n" % n + LINES  # each MiB distinct: no deduplication between them


def _given_up(mib: int, tag: bytes) -> Iterator[bytes]:
    yield from _lines(mib, tag)
    raise RuntimeError("the client dies")


def _blocks_size(pachd: PachdProcess) -> int:
    return sum(p.stat().st_size for p in (pachd.data_dir / "objects" / "blocks").rglob("*") if p.is_file())


def _checker(pachd: PachdProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pachd.check", "--data-dir", str(pachd.data_dir), "--verify-data"],
                          capture_output=True, text=True, timeout=300)


def _temporary_size(pachd: PachdProcess) -> int:
    return sum(p.stat().st_size for p in (pachd.data_dir / "objects" / "tmp").iterdir() if p.is_file())


def test_uploads_whose_client_died_leave_no_blocks(own_pachd: PachdProcess) -> None:
    # A stream's blocks take their names only when its metadata is about to be committed,
    # so a stream that breaks leaves nothing for garbage collection: its files are removed.
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "kept", b"".join(_lines(12)))
        kept = _blocks_size(own_pachd)
        commit = client.start_commit("data")
        for n in range(10):
            with pytest.raises(Exception):
                client.put_file(("data", commit.id), f"lost{n}", _given_up(24, b"%d" % n))
        wait_until(lambda: _temporary_size(own_pachd) == 0, what="the broken uploads' temporary files to go")
        assert _blocks_size(own_pachd) == kept
        assert client.garbage_collect(grace_seconds=0).blocks_removed == 0
        client.finish_commit(("data", commit.id))
        assert client.get_file_bytes(("data", "master/0"), "kept") == b"".join(_lines(12))
        assert [f.file.path for f in client.list_file(("data", commit.id))] == ["/kept"]
    report = _checker(own_pachd)
    assert report.returncode == 0 and "0 blocks (0 bytes) no commit references" in report.stderr, report


def test_an_upload_in_flight_keeps_its_blocks(own_pachd_any: PachdProcess) -> None:
    with Client(own_pachd_any.address) as client:
        _upload_in_flight(client, own_pachd_any)


def _upload_in_flight(client: Client, pachd: PachdProcess) -> None:
    client.create_repo("data")
    commit = client.start_commit("data")
    halfway, resume = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow() -> Iterator[bytes]:
        yield from _lines(20, b"first")
        halfway.set()
        resume.wait(timeout=120)
        yield from _lines(20, b"second")

    def upload() -> None:
        try:
            with Client(client.address) as own:
                own.put_file(("data", commit.id), "big", slow())
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=upload)
    thread.start()
    try:
        assert halfway.wait(timeout=120)
        # Its first blocks are written (to temporary files, named once the stream ends).
        wait_until(lambda: _temporary_size(pachd) > 8 * MIB, timeout=120, what="the upload's first blocks")
        assert client.garbage_collect(grace_seconds=0).blocks_removed == 0
    finally:
        resume.set()
        thread.join()
    assert errors == []
    client.finish_commit(("data", commit.id))
    client.garbage_collect(grace_seconds=0)
    assert client.get_file_bytes(("data", commit.id), "big") == b"".join(_lines(20, b"first")) + b"".join(
        _lines(20, b"second"))


def test_deleting_repos_and_commits_frees_their_blocks_once_unshared(client: Client) -> None:
    data = b"".join(_lines(20))
    for repo in ("one", "two"):
        client.create_repo(repo)
        with client.commit(repo) as c:
            client.put_file((repo, c.id), "same", data)  # the same bytes: the same blocks
    client.garbage_collect(grace_seconds=0)
    open_commit = client.start_commit("one")
    client.put_file(("one", open_commit.id), "other", b"".join(_lines(20, b"open")))
    client.delete_commit(("one", open_commit.id))
    freed = client.garbage_collect(grace_seconds=0)
    assert freed.block_bytes_removed >= 20 * MIB
    client.delete_repo("one")
    assert client.garbage_collect(grace_seconds=0).blocks_removed == 0  # "two" still refers to them
    assert client.get_file_bytes(("two", "master/0"), "same") == data
    client.delete_repo("two")
    gone = client.garbage_collect(grace_seconds=0)
    assert gone.block_bytes_removed >= 20 * MIB and gone.nodes_removed >= 1
    assert gone.blocks_kept == 0


def test_pachctl_garbage_collect(client: Client, tmp_path: Path) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"".join(_lines(10)))
    client.delete_repo("data")
    dry = pachctl(client.address, "garbage-collect", "--grace", "0", "--dry-run")
    assert dry.code == 0 and dry.out.startswith("would remove"), dry
    done = pachctl(client.address, "garbage-collect", "--grace", "0")
    assert done.code == 0 and done.out.startswith("removed"), done
    assert client.garbage_collect(grace_seconds=0).blocks_removed == 0
