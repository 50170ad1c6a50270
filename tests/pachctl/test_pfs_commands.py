"""pachctl's PFS commands against a real pachd: flags, output, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess


@pytest.fixture
def run(pachd: PachdProcess, client: Client):  # type: ignore[no-untyped-def]
    return lambda *args, stdin="": pachctl(pachd.address, *args, stdin=stdin)


def test_repo_commands(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    assert run("create-repo", "data").code == 0
    assert run("create-repo", "out").code == 0
    listed = run("list-repo")
    assert listed.out.splitlines()[0].split() == ["NAME", "CREATED", "SIZE"]
    assert [line.split()[0] for line in listed.out.splitlines()[1:]] == ["data", "out"]
    inspected = run("inspect-repo", "data")
    assert inspected.out.startswith("Name: data\nCreated: ") and "Size: 0 B" in inspected.out
    assert run("delete-repo", "out").code == 0
    bad = run("create-repo", "bad name")
    assert bad.code == 1 and bad.err.startswith("pachctl: ") and len(bad.err.splitlines()) == 1
    missing = run("inspect-repo", "nope")
    assert missing.code == 1 and missing.err.splitlines()[0].startswith("pachctl: ") and len(missing.err.splitlines()) == 2


def test_commit_commands(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    run("create-repo", "data")
    assert run("start-commit", "data", "master").out.strip() == "master/0"
    assert run("finish-commit", "data", "master/0").code == 0
    assert run("start-commit", "data").out.strip() == "master/1"
    assert run("finish-commit", "data", "master/1", "--cancel").code == 0
    assert run("fork-commit", "data", "master/0", "dev").out.strip() == "dev/0"
    listed = run("list-commit", "data").out.splitlines()
    assert listed[0].split() == ["BRANCH", "REPO/ID", "PARENT", "STARTED", "FINISHED", "SIZE"]
    assert [line.split()[1] for line in listed[1:]] == ["data/master/0", "data/dev/0"]
    assert len(run("list-commit", "data", "-a").out.splitlines()) == 4
    assert [line.split()[1] for line in run("list-commit", "data/master/0").out.splitlines()[1:]] == ["data/dev/0"]
    inspected = run("inspect-commit", "data", "master/1").out
    assert "Commit: data/master/1" in inspected and "Parent: master/0" in inspected and "CANCELLED" in inspected
    assert run("list-branch", "data").out.split() == ["dev"]  # master's head is cancelled
    assert run("list-branch", "data", "-a").out.split() == ["dev", "master"]
    assert run("finish-commit", "data", "master/0").code == 1


def test_put_file_forms(run, client: Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run("create-repo", "data")
    assert run("start-commit", "data").code == 0
    assert run("put-file", "data", "master/0", "from_stdin", stdin="piped\n").code == 0
    local = tmp_path / "local.txt"
    local.write_text("a file\n")
    assert run("put-file", "data", "master/0", "named", "-f", str(local)).code == 0
    folder = tmp_path / "tree"
    for rel in ("x", "sub/y", "sub/deeper/z"):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(rel + "\n")
    assert run("put-file", "data", "master/0", "copied", "-r", "-f", str(folder)).code == 0
    assert run("put-file", "data", "master/0", "dir", "-f", str(folder)).code == 1  # needs -r
    listing = tmp_path / "list"
    listing.write_text(f"{local}\n")
    assert run("put-file", "data", "master/0", "from_list", "-i", str(listing)).code == 0
    assert run("finish-commit", "data", "master/0").code == 0
    assert run("put-file", "-c", "data", "master", "with_c", "-d", "json", stdin='{"a": 1}\n').code == 0
    assert client.get_file_bytes(("data", "master/0"), "from_stdin") == b"piped\n"
    assert client.get_file_bytes(("data", "master/0"), "named") == b"a file\n"
    assert client.get_file_bytes(("data", "master/0"), "copied/sub/deeper/z") == b"sub/deeper/z\n"
    assert client.get_file_bytes(("data", "master/1"), "with_c") == b'{"a": 1}\n'
    assert client.inspect_commit(("data", "master/1")).finished.seconds > 0
    late = run("put-file", "data", "master/0", "late", stdin="x")
    assert late.code == 1 and "finished" in late.err


def test_read_commands(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("a", b"hello\n"), ("d/b", b"world\n"), ("d/c", b"!\n")])
    assert run("get-file", "data", "master/0", "a").out == "hello\n"
    files = run("list-file", "data", "master/0").out.splitlines()
    assert files[0].split() == ["NAME", "TYPE", "MODIFIED", "LAST_COMMIT_MODIFIED", "SIZE"]
    assert [line.split()[:2] for line in files[1:]] == [["/a", "file"], ["/d", "dir"]]
    assert run("list-file", "data", "master/0", "d", "--recurse").code == 0
    assert run("list-file", "data", "master/0", "--fast", "--recurse").code == 1
    inspected = run("inspect-file", "data", "master/0", "d").out
    assert "Type: dir" in inspected and "Children:  /d/b  /d/c  \n" in inspected
    sharded = [run("list-file", "data", "master/0", "-s", str(n), "-m", "2").out.splitlines()[1:] for n in (0, 1)]
    assert sorted(line.split()[0] for part in sharded for line in part) == ["/a", "/d"]
    assert run("delete-file", "data", "master/0", "a").code == 1  # finished
    with client.commit("data") as c:
        assert run("delete-file", "data", c.id, "a").code == 0
    assert run("get-file", "data", "master/1", "d/b", "--from", "master/0").code == 1  # unchanged


def test_flush_squash_replay_and_archive(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    with client.commit("a") as up:
        client.put_file(("a", up.id), "f", b"1\n")
    down = client.start_commit("b", provenance=[("a", up.id)])
    client.finish_commit(("b", down.id))
    flushed = run("flush-commit", "a/master/0")
    assert [line.split()[1] for line in flushed.out.splitlines()[1:]] == ["a/master/0", "b/master/0"]
    fork = client.fork_commit("a", "master/0", "side")
    client.put_file(("a", fork.id), "f", b"side\n")
    client.finish_commit(("a", fork.id))
    target = client.start_commit("a")
    assert run("squash-commit", "a", fork.id, target.id).code == 0
    client.finish_commit(("a", target.id))
    assert client.get_file_bytes(("a", target.id), "f") == b"1\nside\n"
    assert run("replay-commit", "a", "side/0", "copy").out.split() == ["copy/0", "copy/1"]
    assert run("archive-all").code == 0
    assert len(run("list-commit", "a").out.splitlines()) == 1


def test_delete_all_asks_first(run, client: Client) -> None:  # type: ignore[no-untyped-def]
    client.create_repo("data")
    assert run("delete-all", stdin="n\n").code == 0
    assert [r.repo.name for r in client.list_repo()] == ["data"]
    assert run("delete-all", stdin="y\n").code == 0
    assert client.list_repo() == []
    client.create_repo("again")
    assert run("delete-all", "-y").code == 0 and client.list_repo() == []


def test_version(run) -> None:  # type: ignore[no-untyped-def]
    lines = run("version").out.splitlines()
    assert lines[0].split() == ["COMPONENT", "VERSION"]
    assert lines[1].split()[0] == "pachctl" and lines[2].split() == ["pachd", "1.2.3-py"]


def test_unreachable_pachd_is_one_clear_line() -> None:
    result = pachctl("127.0.0.1:1", "list-repo")
    assert result.code == 1 and result.err.startswith("pachctl: ") and len(result.err.splitlines()) == 2  # the error, then its hint
