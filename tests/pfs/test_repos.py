"""Repos through the public API: create, inspect, list, delete; names and provenance."""

from __future__ import annotations

import pytest

from pachyderm_client import AlreadyExistsError, Client, FailedPreconditionError, InvalidArgumentError, NotFoundError


def test_create_inspect_list_delete(client: Client) -> None:
    client.create_repo("data")
    client.create_repo("other_1")
    info = client.inspect_repo("data")
    assert info.repo.name == "data" and info.size_bytes == 0 and info.created.seconds > 0
    assert [r.repo.name for r in client.list_repo()] == ["data", "other_1"]
    client.delete_repo("other_1")
    assert [r.repo.name for r in client.list_repo()] == ["data"]


@pytest.mark.parametrize("name", ["", "with-dash", "with space", "dot.name", "slash/name", "ünïcode", "a" * 300])
def test_invalid_names_are_refused(client: Client, name: str) -> None:
    with pytest.raises(InvalidArgumentError):
        client.create_repo(name)
    assert client.list_repo() == []


def test_duplicate_and_missing(client: Client) -> None:
    client.create_repo("data")
    with pytest.raises(AlreadyExistsError):
        client.create_repo("data")
    with pytest.raises(NotFoundError):
        client.inspect_repo("nope")
    with pytest.raises(NotFoundError):
        client.delete_repo("nope")
    with pytest.raises(NotFoundError):
        client.create_repo("out", provenance=["nope"])
    assert [r.repo.name for r in client.list_repo()] == ["data"]


def test_provenance_is_transitive_and_filters_listings(client: Client) -> None:
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    client.create_repo("c", provenance=["b"])
    client.create_repo("d")
    assert [r.name for r in client.inspect_repo("c").provenance] == ["a", "b"]
    assert [r.repo.name for r in client.list_repo(provenance=["a"])] == ["b", "c"]
    assert [r.repo.name for r in client.list_repo(provenance=["a", "b"])] == ["c"]


def test_delete_refused_while_provenance_unless_forced(client: Client) -> None:
    client.create_repo("a")
    client.create_repo("b", provenance=["a"])
    with pytest.raises(FailedPreconditionError):
        client.delete_repo("a")
    client.delete_repo("a", force=True)
    assert [r.repo.name for r in client.list_repo()] == ["b"]


def test_size_counts_finished_commits(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"12345")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"678")
    assert client.inspect_repo("data").size_bytes == 8


def test_deleting_a_repo_forgets_its_commits(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "f", b"x")
    client.delete_repo("data")
    client.create_repo("data")
    assert client.list_commit([("data", "")]) == []
    with pytest.raises(NotFoundError):
        client.inspect_commit(("data", "master/0"))
