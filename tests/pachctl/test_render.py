"""pachctl prints what v1.2.3's pachctl printed, byte for byte.

The golden files (tests/pachctl/golden/) were written from v1.2.3's templates
and printers (src/server/pfs/pretty, src/server/pps/pretty, the cmds' Go
tabwriter settings 20, 1, 3, ' ', 0, go-units' BytesSize and HumanDuration);
each case renders the same data at a fixed "now".
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from pachctl.cli import render
from pachyderm_client.proto import pfs_pb2, pps_pb2

GOLDEN = Path(__file__).parent / "golden"
NOW = 1_000_000_000.0


def at(seconds_ago: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(NOW - seconds_ago))


def golden(name: str) -> str:
    return (GOLDEN / name).read_text()


def _commit(repo: str, commit_id: str) -> pfs_pb2.Commit:
    return pfs_pb2.Commit(repo=pfs_pb2.Repo(name=repo), id=commit_id)


def test_sizes() -> None:
    assert render.size(0) == "0 B"
    assert render.size(874) == "874 B"
    assert render.size(1737) == "1.696 KiB"
    assert render.size(1536) == "1.5 KiB"
    assert render.size(1024 * 1024) == "1 MiB"
    assert render.size(int(2.25 * 1024**3)) == "2.25 GiB"
    assert render.size(123456789) == "117.7 MiB"


@pytest.mark.parametrize(("seconds", "words"), [
    (0.3, "Less than a second"), (1, "1 seconds"), (42, "42 seconds"), (70, "About a minute"),
    (600, "10 minutes"), (46 * 60, "46 minutes"), (59 * 60 + 59, "59 minutes"), (3600, "About an hour"),
    (5400, "About an hour"), (5 * 3600, "5 hours"), (47 * 3600, "47 hours"), (3 * 86400, "3 days"),
    (20 * 86400, "2 weeks"), (60 * 86400, "8 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_durations_are_go_units_words(seconds: float, words: str) -> None:
    assert render.duration(seconds) == words


def test_list_repo() -> None:
    infos = [pfs_pb2.RepoInfo(repo=pfs_pb2.Repo(name="a_much_longer_repo_name_here"), created=at(7200), size_bytes=874),
             pfs_pb2.RepoInfo(repo=pfs_pb2.Repo(name="data"), created=at(3), size_bytes=1737)]
    assert render.repo_rows(infos, NOW) == golden("list-repo.txt")


def test_inspect_repo() -> None:
    info = pfs_pb2.RepoInfo(repo=pfs_pb2.Repo(name="data"), created=at(70),
                            provenance=[pfs_pb2.Repo(name="a"), pfs_pb2.Repo(name="b")])
    assert render.repo_info(info, NOW) == golden("inspect-repo.txt")


def test_inspect_commit() -> None:
    info = pfs_pb2.CommitInfo(commit=_commit("data", "master/1"), parent_commit=_commit("data", "master/0"),
                              branch="master", started=at(5 * 3600), finished=at(600), size_bytes=3 * 1024 * 512,
                              provenance=[_commit("src", "master/2")])
    assert render.commit_info(info, NOW) == golden("inspect-commit.txt")
    cancelled = pfs_pb2.CommitInfo(commit=_commit("r", "x"), started=at(3 * 86400), cancelled=True)
    assert render.commit_info(cancelled, NOW) == golden("inspect-commit-cancelled.txt")


def test_list_commit() -> None:
    infos = [pfs_pb2.CommitInfo(commit=_commit("data", "master/0"), branch="master", started=at(5 * 3600)),
             pfs_pb2.CommitInfo(commit=_commit("data", "master/1"), branch="master", parent_commit=_commit("data", "master/0"),
                                started=at(42), finished=at(1), size_bytes=int(2.25 * 1024**3))]
    assert render.commit_rows(infos, NOW) == golden("list-commit.txt")


def test_files() -> None:
    infos = [pfs_pb2.FileInfo(file=pfs_pb2.File(commit=_commit("data", "master/1"), path="/dir"),
                              file_type=pfs_pb2.FILE_TYPE_DIR, modified=at(600), commit_modified=_commit("data", "master/0")),
             pfs_pb2.FileInfo(file=pfs_pb2.File(commit=_commit("data", "master/1"), path="/dir/f"),
                              file_type=pfs_pb2.FILE_TYPE_REGULAR, modified=at(600), size_bytes=123456789,
                              commit_modified=_commit("data", "master/1"))]
    assert render.file_rows(infos, now=NOW) == golden("list-file.txt")
    one = pfs_pb2.FileInfo(file=pfs_pb2.File(commit=_commit("data", "master/0"), path="/a&b's"),
                           file_type=pfs_pb2.FILE_TYPE_REGULAR, modified=at(30), size_bytes=874,
                           commit_modified=_commit("data", "master/0"))
    assert render.file_info(one, NOW) == golden("inspect-file.txt")
    folder = pfs_pb2.FileInfo(file=pfs_pb2.File(commit=_commit("data", "master/0"), path="/d"),
                              file_type=pfs_pb2.FILE_TYPE_DIR, modified=at(30), commit_modified=_commit("data", "master/0"),
                              children=[pfs_pb2.File(path="/d/x"), pfs_pb2.File(path="/d/y")])
    assert render.file_info(folder, NOW) == golden("inspect-file-dir.txt")


def _job() -> pps_pb2.JobInfo:
    started = at(300)
    return pps_pb2.JobInfo(
        job=pps_pb2.Job(id="abc123"), output_commit=_commit("job_abc123", "master/0"), started=started,
        finished=timestamp_pb2.Timestamp(seconds=started.seconds + 75), state=pps_pb2.JOB_SUCCESS,
        parallelism_spec=pps_pb2.ParallelismSpec(constant=4),
        inputs=[pps_pb2.JobInput(commit=_commit("data", "master/0"),
                                 method=pps_pb2.Method(partition=pps_pb2.BLOCK, incremental=pps_pb2.DIFF))],
        transform=pps_pb2.Transform(image="ubuntu", cmd=["sh"], stdin=["cat /pfs/data/* > /pfs/out/x"],
                                    env={"B": "2", "A": "1"}))


def test_jobs() -> None:
    running = pps_pb2.JobInfo(job=pps_pb2.Job(id="def456"), started=at(10), state=pps_pb2.JOB_RUNNING)
    assert render.job_rows([_job(), running], NOW) == golden("list-job.txt")
    assert render.job_info(_job(), NOW) == golden("inspect-job.txt")


def test_pipelines() -> None:
    info = pps_pb2.PipelineInfo(
        pipeline=pps_pb2.Pipeline(name="sum"), created_at=at(100 * 86400), state=pps_pb2.PIPELINE_RUNNING,
        parallelism_spec=pps_pb2.ParallelismSpec(strategy=pps_pb2.ParallelismSpec.COEFFICIENT, coefficient=0.5),
        inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name="data"),
                                      method=pps_pb2.Method(partition=pps_pb2.BLOCK, incremental=pps_pb2.DIFF))],
        transform=pps_pb2.Transform(cmd=["true"]), job_counts={pps_pb2.JOB_SUCCESS: 2, pps_pb2.JOB_FAILURE: 1})
    assert render.pipeline_info(info, NOW) == golden("inspect-pipeline.txt")
    failing = pps_pb2.PipelineInfo(pipeline=pps_pb2.Pipeline(name="sum"), created_at=at(100 * 86400),
                                   state=pps_pb2.PIPELINE_FAILURE, recent_error="boom")
    assert render.pipeline_info(failing, NOW) == golden("inspect-pipeline-error.txt")
    listed = [pps_pb2.PipelineInfo(pipeline=pps_pb2.Pipeline(name="sum"), output_repo=pfs_pb2.Repo(name="sum"),
                                   state=pps_pb2.PIPELINE_RUNNING,
                                   inputs=[pps_pb2.PipelineInput(repo=pfs_pb2.Repo(name=n)) for n in ("data", "more")]),
              pps_pb2.PipelineInfo(pipeline=pps_pb2.Pipeline(name="noin"), output_repo=pfs_pb2.Repo(name="noin"))]
    assert render.pipeline_rows(listed) == golden("list-pipeline.txt")


def test_version_table() -> None:
    assert render.version_rows([["pachctl", "1.2.3"], ["pachd", "1.2.3"]]) == golden("version.txt")


def test_transform_escapes_like_go() -> None:
    assert render.transform(pps_pb2.Transform(cmd=["a && b < c"])) == '{\n  "cmd": [\n    "a \\u0026\\u0026 b < c"\n  ]\n}'


def test_tables_of_many_rows_are_as_the_cell_by_cell_layout() -> None:
    """The one-format-per-row table is the tabwriter layout: every cell padded to its
    column's width (the widest cell + 3, at least 20), empty cells too, wide characters
    counted as one; rows narrower than the header are laid out cell by cell."""
    rows = [["a" * 25, "", "ü" * 18], ["b", "日本語", ""]]
    assert render.tabulate(["X", "Y", "Z"], rows) == (
        "X" + " " * 27 + "Y" + " " * 19 + "Z" + " " * 20 + "\n"
        + "a" * 25 + " " * 3 + " " * 20 + "ü" * 18 + " " * 3 + "\n"
        + "b" + " " * 27 + "日本語" + " " * 17 + " " * 21 + "\n")
    assert render.tabulate(["X", "Y"], [["a"], ["b", "c"]]) == (
        "X" + " " * 19 + "Y" + " " * 19 + "\n" + "a" + " " * 19 + "\n" + "b" + " " * 19 + "c" + " " * 19 + "\n")


def test_list_file_formats_each_size_and_time_once_against_one_now() -> None:
    """Entries sharing sizes and times print as each would alone."""
    infos = [pfs_pb2.FileInfo(file=pfs_pb2.File(commit=_commit("data", "master/1"), path=f"/f{k}"),
                              file_type=pfs_pb2.FILE_TYPE_REGULAR, modified=at(600 if k % 2 else 7200),
                              size_bytes=[0, 874, 123456789][k % 3], commit_modified=_commit("data", "master/1"))
             for k in range(6)]
    each = "".join(render.file_rows([info], now=NOW).splitlines(keepends=True)[1] for info in infos)
    assert render.file_rows(infos, now=NOW).split("\n", 1)[1] == each
    assert render.file_rows(infos, now=NOW, fast=True).count(" - ") == 2
