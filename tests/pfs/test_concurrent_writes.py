"""Many PutFile streams into one open commit at once: every one succeeds.

Writers appending to the same file do not contend (each append is a key of
its own), so none is ever refused because others write at the same time; the
file holds every append exactly once. The 500-writer variant is `stress`.
"""

from __future__ import annotations

import threading
from collections import Counter

import pytest

from pachyderm_client import Client


def _write_at_once(address: str, repo: str, commit_id: str, writers: int, distinct_paths: bool) -> list[BaseException]:
    errors: list[BaseException] = []
    ready = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            with Client(address) as client:
                path = f"dir/f{n % 10}" if distinct_paths else "foo"
                ready.wait(timeout=120)
                client.put_file((repo, commit_id), path, f"writer {n}\n".encode())
        except BaseException as err:  # noqa: BLE001 - reported by the test
            errors.append(err)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _check(client: Client, writers: int, distinct_paths: bool) -> None:
    if distinct_paths:
        lines = b"".join(client.get_file_bytes(("test", "master/0"), f"dir/f{k}") for k in range(10)).splitlines()
    else:
        lines = client.get_file_bytes(("test", "master/0"), "foo").splitlines()
    assert Counter(lines) == Counter(f"writer {n}".encode() for n in range(writers))


@pytest.mark.parametrize("distinct_paths", [False, True], ids=["one-file", "ten-files"])
def test_a_hundred_writers_into_one_open_commit_all_succeed(client: Client, distinct_paths: bool) -> None:
    client.create_repo("test")
    commit = client.start_commit("test")
    address = client.address
    errors = _write_at_once(address, "test", commit.id, 100, distinct_paths)
    assert errors == []
    before = client.get_file_bytes(("test", commit.id), "dir/f0" if distinct_paths else "foo")
    client.finish_commit(("test", commit.id))
    _check(client, 100, distinct_paths)
    # The open commit's view and the finished tree agree.
    assert client.get_file_bytes(("test", "master/0"), "dir/f0" if distinct_paths else "foo") == before


@pytest.mark.stress
def test_five_hundred_writers_into_one_open_commit_all_succeed(client: Client) -> None:
    client.create_repo("test")
    commit = client.start_commit("test")
    assert _write_at_once(client.address, "test", commit.id, 500, False) == []
    client.finish_commit(("test", commit.id))
    _check(client, 500, False)


def test_sequential_appends_keep_their_order_and_delete_drops_them(client: Client) -> None:
    client.create_repo("test")
    commit = client.start_commit("test")
    for n in range(5):
        client.put_file(("test", commit.id), "f", f"{n}\n".encode())
    assert client.get_file_bytes(("test", commit.id), "f") == b"0\n1\n2\n3\n4\n"
    assert client.inspect_commit(("test", commit.id)).size_bytes == 10
    client.delete_file(("test", commit.id), "f")
    client.put_file(("test", commit.id), "f", b"after\n")
    client.put_file(("test", commit.id), "f", b"again\n")
    client.finish_commit(("test", commit.id))
    assert client.get_file_bytes(("test", "master/0"), "f") == b"after\nagain\n"
