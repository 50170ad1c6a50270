"""Commits through the public API: IDs, parents, branches, finishing, archiving, listing."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from pachyderm_client import AlreadyExistsError, Client, FailedPreconditionError, InvalidArgumentError, NotFoundError
from pachyderm_client.proto import pfs_pb2

TIMEOUT = 30


def test_ids_count_up_on_a_branch(client: Client) -> None:
    client.create_repo("data")
    first = client.start_commit("data", "master")
    assert first.id == "master/0"
    client.finish_commit(("data", first.id))
    second = client.start_commit("data", "master")
    assert second.id == "master/1"
    info = client.inspect_commit(("data", "master"))
    assert info.commit.id == "master/1" and info.parent_commit.id == "master/0"
    assert info.branch == "master" and info.commit_type == pfs_pb2.COMMIT_TYPE_WRITE
    assert client.start_commit("data", "dev").id == "dev/0"
    assert not client.inspect_commit(("data", "dev/0")).HasField("parent_commit")


def test_starting_from_an_old_commit_or_a_missing_one(client: Client) -> None:
    client.create_repo("data")
    for _ in range(2):
        client.finish_commit(("data", client.start_commit("data").id))
    with pytest.raises(AlreadyExistsError):
        client.start_commit("data", "master/0")
    with pytest.raises(NotFoundError):
        client.start_commit("data", "master/9")
    with pytest.raises(InvalidArgumentError):
        client.start_commit("data", "master/x")
    with pytest.raises(NotFoundError):
        client.start_commit("nope", "master")


def test_fork_starts_a_branch_from_any_commit(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"base\n")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"master only\n")
    fork = client.fork_commit("data", "master/0", "feature")
    assert fork.id == "feature/0"
    client.put_file(("data", fork.id), "f", b"feature only\n")
    client.finish_commit(("data", fork.id))
    assert client.inspect_commit(("data", "feature/0")).parent_commit.id == "master/0"
    assert client.get_file_bytes(("data", "feature"), "f") == b"base\nfeature only\n"
    assert client.get_file_bytes(("data", "master"), "f") == b"base\nmaster only\n"
    with pytest.raises(AlreadyExistsError):
        client.fork_commit("data", "master/0", "feature")


def test_finished_commits_are_read_only(client: Client) -> None:
    client.create_repo("data")
    c = client.start_commit("data")
    client.finish_commit(("data", c.id))
    assert client.inspect_commit(("data", c.id)).commit_type == pfs_pb2.COMMIT_TYPE_READ
    with pytest.raises(FailedPreconditionError):
        client.put_file(("data", c.id), "f", b"late")
    with pytest.raises(FailedPreconditionError):
        client.finish_commit(("data", c.id))
    with pytest.raises(FailedPreconditionError):
        client.delete_file(("data", c.id), "f")


def test_finish_waits_for_the_parent(client: Client) -> None:
    client.create_repo("data")
    parent = client.start_commit("data")
    child = client.start_commit("data")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        finishing = pool.submit(client.finish_commit, ("data", child.id))
        with pytest.raises(concurrent.futures.TimeoutError):
            finishing.result(timeout=0.5)
        client.finish_commit(("data", parent.id))
        finishing.result(timeout=TIMEOUT)
    assert client.inspect_commit(("data", child.id)).commit_type == pfs_pb2.COMMIT_TYPE_READ


def test_cancelling_cascades_to_children(client: Client) -> None:
    client.create_repo("data")
    parent = client.start_commit("data")
    client.cancel_commit(("data", parent.id))
    child = client.start_commit("data")
    client.finish_commit(("data", child.id))
    assert client.inspect_commit(("data", child.id)).cancelled
    assert client.list_commit([("data", "")]) == []
    assert len(client.list_commit([("data", "")], status=pfs_pb2.CANCELLED)) == 2


def test_list_filters(client: Client) -> None:
    client.create_repo("data")
    client.create_repo("other")
    ids = []
    for _ in range(3):
        c = client.start_commit("data")
        client.finish_commit(("data", c.id))
        ids.append(c.id)
    open_commit = client.start_commit("data")
    client.finish_commit(("other", client.start_commit("other").id))
    listed = lambda **kw: [c.commit.id for c in client.list_commit(**kw)]  # noqa: E731
    assert listed(from_commits=[("data", "")]) == [*ids, open_commit.id]
    assert listed(from_commits=[("data", "master/0")]) == ["master/1", "master/2", "master/3"]
    assert listed(from_commits=[("data", "")], commit_type=pfs_pb2.COMMIT_TYPE_READ) == ids
    assert listed(from_commits=[("data", "")], commit_type=pfs_pb2.COMMIT_TYPE_WRITE) == [open_commit.id]
    assert len(client.list_commit()) == 5
    with pytest.raises(NotFoundError):
        client.list_commit([("nope", "")])


def test_list_blocks_until_a_new_commit_exists(client: Client) -> None:
    client.create_repo("data")
    first = client.start_commit("data")
    client.finish_commit(("data", first.id))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(client.list_commit, [("data", first.id)], commit_type=pfs_pb2.COMMIT_TYPE_READ,
                              block=True)
        with pytest.raises(concurrent.futures.TimeoutError):
            waiting.result(timeout=0.5)
        second = client.start_commit("data")
        with pytest.raises(concurrent.futures.TimeoutError):
            waiting.result(timeout=0.3)  # still open: not a READ commit yet
        client.finish_commit(("data", second.id))
        assert [c.commit.id for c in waiting.result(timeout=TIMEOUT)] == ["master/1"]


def test_archive_hides_commits_and_their_downstream(client: Client) -> None:
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    upstream = client.start_commit("a")
    client.finish_commit(("a", upstream.id))
    downstream = client.start_commit("b", provenance=[("a", upstream.id)])
    client.finish_commit(("b", downstream.id))
    client.archive_commit([("a", upstream.id)])
    assert client.list_commit([("a", ""), ("b", "")]) == []
    archived = client.list_commit([("a", ""), ("b", "")], status=pfs_pb2.ARCHIVED)
    assert {(c.commit.repo.name, c.commit.id) for c in archived} == {("a", "master/0"), ("b", "master/0")}
    client.finish_commit(("a", client.start_commit("a").id))
    client.archive_all()
    assert client.list_commit() == []


def test_provenance_must_come_from_provenance_repos(client: Client) -> None:
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    client.create_repo("c")
    client.finish_commit(("c", client.start_commit("c").id))
    with pytest.raises(InvalidArgumentError):
        client.start_commit("b", provenance=[("c", "master/0")])
    client.finish_commit(("a", client.start_commit("a").id))
    commit = client.start_commit("b", provenance=[("a", "master")])
    assert [(p.repo.name, p.id) for p in client.inspect_commit(("b", commit.id)).provenance] == [("a", "master/0")]
    assert [c.commit.id for c in client.list_commit([("b", "")], provenance=[("a", "master/0")])] == ["master/0"]


def test_list_branch(client: Client) -> None:
    client.create_repo("data")
    for branch in ("master", "dev", "bugfix"):
        client.finish_commit(("data", client.start_commit("data", branch).id))
    client.cancel_commit(("data", client.start_commit("data", "dev").id))
    assert client.list_branch("data") == ["bugfix", "master"]
    assert client.list_branch("data", status=pfs_pb2.ALL) == ["bugfix", "dev", "master"]


def test_delete_an_open_commit(client: Client) -> None:
    client.create_repo("data")
    client.finish_commit(("data", client.start_commit("data").id))
    doomed = client.start_commit("data")
    client.put_file(("data", doomed.id), "f", b"never")
    client.delete_commit(("data", doomed.id))
    with pytest.raises(NotFoundError):
        client.inspect_commit(("data", doomed.id))
    assert client.start_commit("data").id == "master/1"
    with pytest.raises(FailedPreconditionError):
        client.delete_commit(("data", "master/0"))


def test_flush_waits_for_downstream_commits(client: Client) -> None:
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    client.create_repo("c", provenance=["b"])
    upstream = client.start_commit("a")
    client.finish_commit(("a", upstream.id))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        flushing = pool.submit(client.flush_commit, [("a", upstream.id)])
        b_commit = client.start_commit("b", provenance=[("a", upstream.id)])
        client.finish_commit(("b", b_commit.id))
        with pytest.raises(concurrent.futures.TimeoutError):
            flushing.result(timeout=0.5)  # c has nothing yet
        c_commit = client.start_commit("c", provenance=[("b", b_commit.id)])
        client.finish_commit(("c", c_commit.id))
        flushed = flushing.result(timeout=TIMEOUT)
    assert [(c.commit.repo.name, c.commit.id) for c in flushed] == [("a", "master/0"), ("b", "master/0"),
                                                                    ("c", "master/0")]
    only_b = client.flush_commit([("a", upstream.id)], to_repos=["b"], timeout=TIMEOUT)
    assert [c.commit.repo.name for c in only_b] == ["a", "b"]


def test_squash_merges_sibling_commits(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as base:
        client.put_file(("data", base.id), "log", b"base\n")
    pods = []
    for name in ("one", "two"):
        fork = client.fork_commit("data", base.id, name)
        client.put_file(("data", fork.id), "log", f"{name}\n".encode())
        client.put_file(("data", fork.id), name, b"own file\n")
        client.finish_commit(("data", fork.id))
        pods.append(fork.id)
    target = client.start_commit("data", "master")
    client.squash_commit([("data", c) for c in pods], target)
    client.finish_commit(("data", target.id))
    assert client.get_file_bytes(("data", target.id), "log") == b"base\none\ntwo\n"
    assert sorted(f.file.path for f in client.list_file(("data", target.id))) == ["/log", "/one", "/two"]
    with pytest.raises(FailedPreconditionError):
        client.squash_commit([("data", c) for c in pods], target)


def test_replay_copies_commits_onto_a_branch(client: Client) -> None:
    client.create_repo("data")
    for text in (b"1\n", b"2\n", b"3\n"):
        with client.commit("data", "dev") as c:
            client.put_file(("data", c.id), "f", text)
    replayed = client.replay_commit([("data", "dev/2")], "master")
    assert [c.id for c in replayed] == ["master/0", "master/1", "master/2"]
    assert client.get_file_bytes(("data", "master"), "f") == b"1\n2\n3\n"


def test_commit_context_manager_cancels_on_error(client: Client) -> None:
    client.create_repo("data")
    with pytest.raises(RuntimeError):
        with client.commit("data") as c:
            client.put_file(("data", c.id), "f", b"x")
            raise RuntimeError("boom")
    assert client.inspect_commit(("data", "master/0")).cancelled


def test_concurrent_starts_on_one_branch_all_get_distinct_ids(client: Client) -> None:
    client.create_repo("data")
    ids: list[str] = []
    lock = threading.Lock()

    def start() -> None:
        commit = client.start_commit("data", "master")
        with lock:
            ids.append(commit.id)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: start(), range(16)))
    assert sorted(ids, key=lambda i: int(i.split("/")[1])) == [f"master/{n}" for n in range(16)]
