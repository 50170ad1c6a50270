"""Writers through `pachctl mount`: O_APPEND handles append at the file's end,
whoever grew it, and a write() + close() that succeeded is in the commit,
whole and in order per handle, however flushes of other descriptors and size
lookups of readers interleave with it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pachyderm_client import Client
from tests.support.mounts import sh

APPEND = os.O_WRONLY | os.O_APPEND | os.O_CREAT


def open_commit(client: Client, mounted: Path) -> tuple[str, Path]:
    client.create_repo("r")
    commit = client.start_commit("r")
    return commit.id, mounted / "r" / commit.id.replace("/", "-")


def test_two_append_handles_on_one_file(mounted: Path, client: Client) -> None:
    commit_id, folder = open_commit(client, mounted)
    sh(f"bash -c 'echo zero >> {folder}/f; exec 3>>{folder}/f; echo a >> {folder}/f; echo b >&3'")
    assert (folder / "f").read_bytes() == b"zero\na\nb\n"
    client.finish_commit(("r", commit_id))
    assert client.get_file_bytes(("r", commit_id), "f") == b"zero\na\nb\n"


def test_interleaved_append_handles_keep_each_write_whole(mounted: Path, client: Client) -> None:
    commit_id, folder = open_commit(client, mounted)
    fds = [os.open(folder / "f", APPEND) for _ in range(3)]
    for round_no in range(20):
        for number, fd in enumerate(fds):
            line = f"{number}:{round_no}\n".encode()
            assert os.write(fd, line) == len(line)
            if round_no % 3 == number:
                os.fsync(fd)  # some handles send as they go, others keep theirs until close
    for fd in fds:
        os.close(fd)
    client.finish_commit(("r", commit_id))
    lines = client.get_file_bytes(("r", commit_id), "f").decode().splitlines()
    assert sorted(lines) == sorted(f"{n}:{r}" for n in range(3) for r in range(20))
    for number in range(3):  # each handle's lines in the order it wrote them
        assert [line for line in lines if line.startswith(f"{number}:")] == [f"{number}:{r}" for r in range(20)]


def test_a_flush_from_another_descriptor_loses_and_reorders_nothing(mounted: Path, client: Client) -> None:
    """close() of a duplicate descriptor (as a forked child's exec does) flushes the
    handle while its writer goes on writing: the writes made meanwhile are kept,
    and land after what the flush sent."""
    commit_id, folder = open_commit(client, mounted)
    expected: dict[str, bytes] = {}
    for round_no in range(4):
        name = f"f{round_no}"
        big = bytes([65 + round_no]) * (8 << 20) + b"\n"
        fd = os.open(folder / name, APPEND)
        os.write(fd, big)
        first, second = os.dup(fd), os.dup(fd)
        closer = threading.Thread(target=os.close, args=(first,))
        closer.start()  # its flush sends the 8 MiB
        lines = b"".join(f"line {i}\n".encode() for i in range(round_no * 5, round_no * 5 + 5))
        for i in range(5):
            os.write(fd, f"line {round_no * 5 + i}\n".encode())
        if round_no % 2:
            os.close(second)  # a second flush, racing the first
        closer.join()
        os.close(fd)
        if not round_no % 2:
            os.close(second)
        expected[name] = big + lines
    client.finish_commit(("r", commit_id))
    for name, content in expected.items():
        got = client.get_file_bytes(("r", commit_id), name)
        assert len(got) == len(content) and got == content, name


def test_a_sequential_appender_watched_by_readers(mounted: Path, client: Client) -> None:
    """One writer appends line after line (open, write, close) while readers keep
    asking for the file's size and content: no write is refused, none is lost."""
    commit_id, folder = open_commit(client, mounted)
    path = folder / "log"
    done = threading.Event()
    problems: list[BaseException] = []

    def watch() -> None:
        try:
            while not done.is_set():
                os.listdir(folder)
                if path.exists():
                    os.stat(path)
                    path.read_bytes()
        except BaseException as err:  # noqa: BLE001 - reported by the test
            problems.append(err)

    readers = [threading.Thread(target=watch) for _ in range(4)]
    for reader in readers:
        reader.start()
    expected = b""
    try:
        for i in range(200):
            line = f"{i:05d} {'x' * (i % 200)}\n".encode()
            fd = os.open(path, APPEND)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
            expected += line
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert not problems
    assert path.read_bytes() == expected
    client.finish_commit(("r", commit_id))
    assert client.get_file_bytes(("r", commit_id), "log") == expected
