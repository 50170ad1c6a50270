"""Consistent provenance: a job's inputs all descend from the same commits upstream.

A pipeline C reading A and B, where B is a pipeline reading A, runs on each
commit of A together with B's output for that same commit of A, never with
B's output of an older one.
"""

from __future__ import annotations

from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2
from tests.support.pipelines import MAP, REDUCE, pipeline

TIMEOUT = 120


def commit_file(client: Client, repo: str, path: str, data: bytes, *, replace: bool = False) -> str:
    with client.commit(repo) as c:
        if replace:
            client.delete_file((repo, c.id), path)
        client.put_file((repo, c.id), path, data)
    return c.id


def test_diamond_pairs_each_commit_with_its_own_downstream_output(client: Client) -> None:
    client.create_repo("a")
    client.create_pipeline(pipeline("b", "cp /pfs/a/file /pfs/out/file", [("a", MAP)]))
    client.create_pipeline(pipeline("c", "diff /pfs/a/file /pfs/b/file > /pfs/out/file",
                                    [("a", MAP), ("b", MAP)]))
    for n, data in enumerate([b"foo\n", b"bar\n", b"baz\n"]):
        commit = commit_file(client, "a", "file", data)
        flushed = client.flush_commit([("a", commit)], timeout=TIMEOUT)
        assert sorted(c.commit.repo.name for c in flushed) == ["a", "b", "c"]
        outputs = client.list_commit([("c", "")], commit_type=pfs_pb2.COMMIT_TYPE_READ)
        assert len(outputs) == n + 1
    for info in client.list_commit([("c", "")], commit_type=pfs_pb2.COMMIT_TYPE_READ):
        assert client.inspect_file(("c", info.commit.id), "file").size_bytes == 0  # a and b always agreed
    jobs = client.list_job("c")
    assert len(jobs) == 3 and all(j.state == 3 for j in jobs)  # JOB_SUCCESS, none failed
    for job in jobs:
        inputs = {i.commit.repo.name: i.commit.id for i in job.inputs}
        b_provenance = client.inspect_commit(("b", inputs["b"])).provenance
        assert ("a", inputs["a"]) in {(p.repo.name, p.id) for p in b_provenance}


def test_flush_of_several_commits_in_a_row_returns_each_ones_outputs(client: Client) -> None:
    client.create_repo("a")
    client.create_pipeline(pipeline("b", "cp /pfs/a/file /pfs/out/file", [("a", MAP)]))
    client.create_pipeline(pipeline("c", "cat /pfs/a/file /pfs/b/file > /pfs/out/file",
                                    [("a", REDUCE), ("b", REDUCE)]))
    commits = [commit_file(client, "a", "file", b"%d\n" % n, replace=n > 0) for n in range(3)]  # no waiting between them
    for n, commit in enumerate(commits):
        flushed = client.flush_commit([("a", commit)], timeout=TIMEOUT)
        out = {c.commit.repo.name: c.commit.id for c in flushed}
        assert client.get_file_bytes(("c", out["c"]), "file") == b"%d\n%d\n" % (n, n)
    assert len(client.list_job("c")) == 3
