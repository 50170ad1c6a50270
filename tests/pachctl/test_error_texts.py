"""The error texts v1.2.3's own test suites pinned, exactly, through the raw gRPC stubs.

Each keeps our precise status code; the hint (how to fix it) arrives beside the
text in the trailing metadata, and pachctl prints it on a line of its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from pachyderm_client import Client
from pachyderm_client.errors import HINT_KEY
from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc, pps_pb2, pps_pb2_grpc
from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess


@pytest.fixture
def stubs(pachd: PachdProcess, client: Client) -> Iterator[tuple[pfs_pb2_grpc.APIStub, pps_pb2_grpc.APIStub]]:
    with grpc.insecure_channel(pachd.address) as channel:
        yield pfs_pb2_grpc.APIStub(channel), pps_pb2_grpc.APIStub(channel)


def _failure(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)
    return caught.value


def _hint(err: grpc.RpcError) -> str:
    return next((bytes(v).decode() for k, v in err.trailing_metadata() or () if k == HINT_KEY), "")  # type: ignore[attr-defined]


def _commit(repo: str, commit_id: str) -> pfs_pb2.Commit:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id)


def _file(repo: str, commit_id: str, path: str) -> pfs_pb2.File:
    return pfs_pb2.File(commit=_commit(repo, commit_id), path=path)


def _pipeline(name: str, input_repo: str) -> pps_pb2.CreatePipelineRequest:
    return pps_pb2.CreatePipelineRequest(
        pipeline=pps_pb2.Pipeline(name=name), transform=pps_pb2.Transform(cmd=["true"]),
        parallelism_spec=pps_pb2.ParallelismSpec(strategy=pps_pb2.ParallelismSpec.CONSTANT, constant=1),
        inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=input_repo))])


def test_pfs_texts(stubs: tuple[pfs_pb2_grpc.APIStub, pps_pb2_grpc.APIStub], client: Client) -> None:
    pfs, _ = stubs
    client.create_repo("test")
    open_commit = client.start_commit("test")
    client.put_file(("test", open_commit.id), "file", b"foo\n")
    not_found = grpc.StatusCode.NOT_FOUND
    cases: list[tuple[Callable[[], Any], grpc.StatusCode, str]] = [
        (lambda: pfs.CreateRepo(pfs_pb2.CreateRepoRequest(repo=pfs_pb2.Repo(name="foo||@&#$TYX"))),
         grpc.StatusCode.INVALID_ARGUMENT,
         "repo name (foo||@&#$TYX) invalid: only alphanumeric and underscore characters allowed"),
        (lambda: pfs.CreateRepo(pfs_pb2.CreateRepoRequest(repo=pfs_pb2.Repo(name="test"))),
         grpc.StatusCode.ALREADY_EXISTS, "repo test exists"),
        (lambda: pfs.StartCommit(pfs_pb2.StartCommitRequest(parent=_commit("zzzzz", "master"))), not_found,
         "repo zzzzz not found"),
        (lambda: pfs.ListCommit(pfs_pb2.ListCommitRequest(from_commits=[_commit("zzzzz", "")])), not_found,
         "repo zzzzz not found"),
        (lambda: pfs.InspectRepo(pfs_pb2.InspectRepoRequest(repo=pfs_pb2.Repo(name="bogusrepo"))), not_found,
         "repo bogusrepo not found"),
        (lambda: pfs.PutFile(iter([pfs_pb2.PutFileRequest(file=_file("sdf", open_commit.id, "file"), value=b"foo\n")])),
         not_found, "repo sdf not found"),
        (lambda: pfs.FinishCommit(pfs_pb2.FinishCommitRequest(commit=_commit("zzzzzz", open_commit.id))), not_found,
         "repo zzzzzz not found"),
        (lambda: pfs.FinishCommit(pfs_pb2.FinishCommitRequest(commit=_commit("test", "bogus"))), not_found,
         "commit bogus not found in repo test"),
        (lambda: pfs.FinishCommit(pfs_pb2.FinishCommitRequest(commit=_commit("test", "bogus"), cancel=True)),
         not_found, "commit bogus not found in repo test"),
        (lambda: pfs.InspectCommit(pfs_pb2.InspectCommitRequest(commit=_commit("test", "bogus"))), not_found,
         "commit bogus not found in repo test"),
        (lambda: pfs.ListBranch(pfs_pb2.ListBranchRequest(repo=pfs_pb2.Repo(name="blah"))), not_found,
         "repo blah not found"),
        (lambda: pfs.InspectFile(pfs_pb2.InspectFileRequest(file=_file("test", open_commit.id, "nofile"))),
         not_found, f"file nofile not found in repo test at commit {open_commit.id}"),
        (lambda: pfs.PutFile(iter([pfs_pb2.PutFileRequest(file=_file("test", "sdf", "foo"),
                                                          file_type=pfs_pb2.FILE_TYPE_DIR)])),
         not_found, "commit sdf not found in repo test"),
        (lambda: pfs.GetFile(pfs_pb2.GetFileRequest(file=_file("test", "aninvalidcommitid", "file"))), not_found,
         "commit aninvalidcommitid not found in repo test"),
    ]
    for call, code, text in cases:
        err = _failure(call)
        assert (err.code(), err.details()) == (code, text)  # type: ignore[attr-defined]
    hinted = _failure(lambda: pfs.InspectRepo(pfs_pb2.InspectRepoRequest(repo=pfs_pb2.Repo(name="bogusrepo"))))
    assert "list-repo" in _hint(hinted)


def test_pps_texts(stubs: tuple[pfs_pb2_grpc.APIStub, pps_pb2_grpc.APIStub], client: Client) -> None:
    _, pps = stubs
    client.create_repo("data")
    client.create_repo("taken")
    client.create_pipeline(_pipeline("first", "data"))
    job_input = pps_pb2.JobInput(commit=_commit("bogusRepo", "bogusCommit"))
    cases: list[tuple[Callable[[], Any], grpc.StatusCode, str]] = [
        (lambda: pps.InspectPipeline(pps_pb2.InspectPipelineRequest(pipeline=pps_pb2.Pipeline(name="blah"))),
         grpc.StatusCode.NOT_FOUND, "PipelineInfos blah not found"),
        (lambda: pps.CreatePipeline(_pipeline("lskdjf", "test")), grpc.StatusCode.NOT_FOUND, "repo test not found"),
        (lambda: pps.InspectJob(pps_pb2.InspectJobRequest(job=pps_pb2.Job(id="blah"), block_state=True)),
         grpc.StatusCode.NOT_FOUND, "JobInfos blah not found"),
        (lambda: pps.GetLogs(pps_pb2.GetLogsRequest(job=pps_pb2.Job(id="bogusJobId"))), grpc.StatusCode.NOT_FOUND,
         "job bogusJobId not found"),
        (lambda: pps.CreatePipeline(_pipeline("first", "data")), grpc.StatusCode.ALREADY_EXISTS,
         "pipeline first already exists"),
        (lambda: pps.CreatePipeline(_pipeline("taken", "data")), grpc.StatusCode.ALREADY_EXISTS, "repo taken exists"),
    ]
    for call, code, text in cases:
        err = _failure(call)
        assert (err.code(), err.details()) == (code, text)  # type: ignore[attr-defined]
    err = _failure(lambda: pps.CreateJob(pps_pb2.CreateJobRequest(
        transform=pps_pb2.Transform(image="askjdfhgsdflkjh", cmd=["true"]), inputs=[job_input])))
    assert err.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert re.fullmatch("could not create repo job_.*, not all provenance repos exist", err.details())  # type: ignore[attr-defined]
    assert "bogusRepo" in _hint(err)
    assert not [r for r in client.list_repo() if r.repo.name.startswith("job_")]


def test_pachctl_prints_the_text_then_the_hint(pachd: PachdProcess, client: Client) -> None:
    ran = pachctl(pachd.address, "inspect-repo", "bogusrepo")
    assert ran.code == 1
    assert ran.err.splitlines() == ["pachctl: repo bogusrepo not found",
                                    "hint: see list-repo for the repos that exist"]
    assert client.list_repo() == []
