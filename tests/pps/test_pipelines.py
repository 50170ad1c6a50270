"""Pipeline lifecycle: create errors, update with and without archive, stop and start, delete."""

from __future__ import annotations

import json

import pytest

from pachyderm_client import AlreadyExistsError, Client, InvalidArgumentError, NotFoundError
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.pipelines import MAP, REDUCE, pipeline
from tests.support.wait import wait_until

TIMEOUT = 90


def commit_file(client: Client, repo: str, path: str, data: bytes) -> str:
    with client.commit(repo) as c:
        client.put_file((repo, c.id), path, data)
    return c.id


def test_create_errors(client: Client) -> None:
    client.create_repo("data")
    with pytest.raises(NotFoundError):
        client.create_pipeline(pipeline("p", "true", [("nope", MAP)]))
    with pytest.raises(InvalidArgumentError):
        client.create_pipeline(pipeline("bad-name", "true", [("data", MAP)]))
    with pytest.raises(InvalidArgumentError):
        client.create_pipeline(pps_pb2.CreatePipelineRequest(pipeline=pps_pb2.Pipeline(name="nocmd")))
    with pytest.raises(InvalidArgumentError):
        client.create_pipeline(pipeline("dup", "true", [("data", MAP), ("data", REDUCE)]))
    client.create_pipeline(pipeline("p", "true", [("data", MAP)]))
    with pytest.raises(AlreadyExistsError):
        client.create_pipeline(pipeline("p", "true", [("data", MAP)]))
    with pytest.raises(AlreadyExistsError):
        client.create_pipeline(pipeline("data", "true", []))  # a repo has that name
    assert [p.pipeline.name for p in client.list_pipeline()] == ["p"]
    info = client.inspect_pipeline("p")
    assert info.output_repo.name == "p" and [r.name for r in client.inspect_repo("p").provenance] == ["data"]


def test_update_with_archive_reruns_on_existing_commits(client: Client) -> None:
    client.create_repo("data")
    commit_file(client, "data", "f", b"a\n")
    commit_file(client, "data", "f", b"b\n")
    client.create_pipeline(pipeline("p", "cat /pfs/data/f > /pfs/out/v1", [("data", REDUCE)]))
    client.flush_commit([("data", "master/1")], timeout=TIMEOUT)
    old_outputs = {c.commit.id for c in client.list_commit([("p", "")])}
    assert len(old_outputs) == 2
    update = pipeline("p", "cat /pfs/data/f > /pfs/out/v2", [("data", REDUCE)])
    update.update = True
    client.create_pipeline(update)
    flushed = client.flush_commit([("data", "master/1")], timeout=TIMEOUT)
    newest = flushed[-1].commit.id
    assert newest not in old_outputs
    assert [f.file.path for f in client.list_file(("p", newest))] == ["/v2"]
    visible = {c.commit.id for c in client.list_commit([("p", "")])}
    assert not visible & old_outputs and len(visible) == 2  # both input commits re-run, old outputs archived


def test_update_without_archive_keeps_old_outputs(client: Client) -> None:
    client.create_repo("data")
    commit_file(client, "data", "f", b"a\n")
    client.create_pipeline(pipeline("p", "cp /pfs/data/f /pfs/out/v1", [("data", REDUCE)]))
    client.flush_commit([("data", "master/0")], timeout=TIMEOUT)
    update = pipeline("p", "cp /pfs/data/f /pfs/out/v2", [("data", REDUCE)])
    update.update, update.no_archive = True, True
    client.create_pipeline(update)
    wait_until(lambda: len(client.list_job("p")) == 2, what="the re-run job")
    rerun = client.list_job("p")[0]
    assert client.inspect_job(rerun.job.id, block_state=True, timeout=TIMEOUT).state == pps_pb2.JOB_SUCCESS
    outputs = client.list_commit([("p", "")])
    assert {tuple(f.file.path for f in client.list_file(("p", c.commit.id))) for c in outputs} == {("/v1",), ("/v2",)}


def test_stopped_pipelines_make_no_jobs_until_started(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("paused", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
    client.create_pipeline(pipeline("running", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
    client.stop_pipeline("paused")
    assert client.inspect_pipeline("paused").state == pps_pb2.PIPELINE_STOPPED
    commit = commit_file(client, "data", "f", b"x\n")
    client.flush_commit([("data", commit)], to_repos=["running"], timeout=TIMEOUT)
    assert client.list_job("paused") == []
    client.start_pipeline("paused")
    assert client.inspect_pipeline("paused").state == pps_pb2.PIPELINE_RUNNING
    flushed = client.flush_commit([("data", commit)], to_repos=["paused"], timeout=TIMEOUT)
    assert client.get_file_bytes(("paused", flushed[-1].commit.id), "f") == b"x\n"


def test_delete_pipeline_keeps_its_repo(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("p", "cp /pfs/data/f /pfs/out/f", [("data", MAP)]))
    commit = commit_file(client, "data", "f", b"x\n")
    client.flush_commit([("data", commit)], timeout=TIMEOUT)
    client.delete_pipeline("p")
    with pytest.raises(NotFoundError):
        client.inspect_pipeline("p")
    assert client.list_job("p") == []
    assert len(client.list_commit([("p", "")], status=pfs_pb2.ALL)) >= 1
    commit_file(client, "data", "f", b"y\n")  # no pipeline reacts any more
    assert client.list_job() == []


def test_pipeline_without_inputs_runs_on_demand(client: Client) -> None:
    client.create_pipeline(pipeline("gen", "seq 3 > /pfs/out/numbers", []))
    assert client.inspect_pipeline("gen").state == pps_pb2.PIPELINE_IDLE
    job = client.run_pipeline("gen")
    info = client.inspect_job(job.id, block_state=True, timeout=TIMEOUT)
    assert info.state == pps_pb2.JOB_SUCCESS
    assert client.get_file_bytes(("gen", info.output_commit.id), "numbers") == b"1\n2\n3\n"


def test_images_are_ignored_under_the_local_executor_with_a_warning(own_pachd: PachdProcess) -> None:
    manifest = "\n".join(json.dumps({
        "pipeline": {"name": name}, "transform": {"image": "example/custom:1", "cmd": ["true"]},
        "inputs": [{"repo": {"name": "data"}}],
    }) for name in ("one", "two"))
    assert pachctl(own_pachd.address, "create-repo", "data").code == 0
    created = pachctl(own_pachd.address, "create-pipeline", stdin=manifest)
    assert created.code == 0
    assert created.err.count("example/custom:1") == 1 and created.err.startswith("warning: ")
    plain = pachctl(own_pachd.address, "create-pipeline", stdin=json.dumps({
        "pipeline": {"name": "plain"}, "transform": {"cmd": ["true"]}, "inputs": [{"repo": {"name": "data"}}]}))
    assert plain.code == 0 and plain.err == ""
    with Client(own_pachd.address) as client:
        commit_file(client, "data", "f", b"x\n")
        flushed = client.flush_commit([("data", "master/0")], timeout=TIMEOUT)
        assert len(flushed) == 4  # the pods ran here, images or not
    assert own_pachd.log_path.read_text().count("is ignored: the local executor") == 1
