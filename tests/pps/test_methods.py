"""Input methods, parallelism and sharding, multi-input and chained pipelines."""

from __future__ import annotations

from pachyderm_client import Client
from pachyderm_client.proto import pfs_pb2, pps_pb2
from tests.support.pipelines import GLOBAL, INCREMENTAL_REDUCE, MAP, REDUCE, pipeline

TIMEOUT = 90


def put_lines(client: Client, repo: str, files: int, lines: int, tag: str = "") -> str:
    with client.commit(repo) as commit:
        client.put_files((repo, commit.id), [
            (f"f{i}", b"".join(b"%s line %d-%d\n" % (tag.encode(), i, j) for j in range(lines))) for i in range(files)
        ])
    return commit.id


def output(client: Client, repo: str, commit: str) -> pfs_pb2.CommitInfo:
    flushed = client.flush_commit([(repo, commit)], timeout=TIMEOUT)
    return flushed[-1]


def job_of(client: Client, pipeline_name: str, output_commit: str) -> pps_pb2.JobInfo:
    """The job that made the output commit, once it has ended: its state is recorded just after
    the output is finished, so a client waits for it (as v1.2's do, with block_state)."""
    made = next(j for j in client.list_job(pipeline_name) if j.output_commit.id == output_commit)
    return client.inspect_job(made.job.id, block_state=True, timeout=TIMEOUT)


def test_map_with_four_pods_processes_each_record_once(client: Client) -> None:
    client.create_repo("data")
    first = put_lines(client, "data", files=40, lines=5)
    client.create_pipeline(pipeline("copy", "cat /pfs/data/* >> /pfs/out/all", [("data", MAP)], parallelism=4))
    out = output(client, "data", first)
    lines = client.get_file_bytes(("copy", out.commit.id), "all").splitlines()
    assert len(lines) == 200 and len(set(lines)) == 200
    assert len(job_of(client, "copy", out.commit.id).pod_commits) == 4

    second = put_lines(client, "data", files=40, lines=1, tag="new")
    out = output(client, "data", second)
    lines = client.get_file_bytes(("copy", out.commit.id), "all").splitlines()
    assert len(lines) == 240 and len(set(lines)) == 240  # map is incremental: the old lines were not redone


def test_parallelism_one_gives_one_pod(client: Client) -> None:
    client.create_repo("data")
    first = put_lines(client, "data", files=10, lines=2)
    client.create_pipeline(pipeline("copy", "cat /pfs/data/* > /pfs/out/all", [("data", MAP)], parallelism=1))
    out = output(client, "data", first)
    assert len(job_of(client, "copy", out.commit.id).pod_commits) == 1
    assert len(client.get_file_bytes(("copy", out.commit.id), "all").splitlines()) == 20


def test_reduce_sees_whole_files_and_all_data_each_time(client: Client) -> None:
    client.create_repo("data")
    first = put_lines(client, "data", files=8, lines=3)
    client.create_pipeline(pipeline(
        "count", "for f in /pfs/data/*; do wc -l < $f > /pfs/out/$(basename $f); done", [("data", REDUCE)],
        parallelism=3))
    out = output(client, "data", first)
    counts = {f.file.path: client.get_file_bytes(("count", out.commit.id), f.file.path)
              for f in client.list_file(("count", out.commit.id))}
    assert counts == {f"/f{i}": b"3\n" for i in range(8)}
    assert len(job_of(client, "count", out.commit.id).pod_commits) == 3
    second = put_lines(client, "data", files=8, lines=2)
    out = output(client, "data", second)
    assert client.get_file_bytes(("count", out.commit.id), "f5") == b"5\n"  # NONE: everything again, fresh output
    assert not client.inspect_commit(("count", out.commit.id)).HasField("parent_commit")


def test_incremental_reduce_sees_only_new_data_per_file(client: Client) -> None:
    client.create_repo("data")
    first = put_lines(client, "data", files=4, lines=3)
    client.create_pipeline(pipeline(
        "tally", "for f in /pfs/data/*; do wc -l < $f >> /pfs/out/$(basename $f); done", [("data", INCREMENTAL_REDUCE)],
        parallelism=2))
    output(client, "data", first)
    second = put_lines(client, "data", files=4, lines=2)
    out = output(client, "data", second)
    assert client.get_file_bytes(("tally", out.commit.id), "f2") == b"3\n2\n"


def test_global_input_is_seen_whole_by_every_pod(client: Client) -> None:
    client.create_repo("data")
    client.create_repo("model")
    with client.commit("model") as c:
        client.put_file(("model", c.id), "weights", b"w1\nw2\nw3\n")
    first = put_lines(client, "data", files=20, lines=1)
    client.create_pipeline(pipeline(
        "score", 'echo "$(ls /pfs/data | wc -l) $(wc -l < /pfs/model/weights)" >> /pfs/out/seen',
        [("data", MAP), ("model", GLOBAL)], parallelism=2))
    out = output(client, "data", first)
    seen = [line.split() for line in client.get_file_bytes(("score", out.commit.id), "seen").decode().splitlines()]
    assert len(seen) == 2
    assert sum(int(files) for files, _ in seen) == 20  # data split between the pods
    assert all(weights == "3" for _, weights in seen)  # the model whole in each


def test_multiple_inputs_pair_with_the_newest_commit_of_the_other(client: Client) -> None:
    client.create_repo("left")
    client.create_repo("right")
    client.create_pipeline(pipeline(
        "join", "cat /pfs/left/* /pfs/right/* > /pfs/out/joined", [("left", REDUCE), ("right", REDUCE)]))
    with client.commit("left") as c:
        client.put_file(("left", c.id), "l", b"L1\n")
    assert client.list_job("join") == []  # right has nothing yet
    with client.commit("right") as c:
        client.put_file(("right", c.id), "r", b"R1\n")
    out = output(client, "right", "master/0")
    assert client.get_file_bytes(("join", out.commit.id), "joined") == b"L1\nR1\n"
    with client.commit("left") as c:
        client.put_file(("left", c.id), "l", b"L2\n")
    out = output(client, "left", "master/1")
    assert client.get_file_bytes(("join", out.commit.id), "joined") == b"L1\nL2\nR1\n"
    assert len(client.list_job("join")) == 2


def test_chained_pipelines_and_flush_through_the_dag(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("upper", "cat /pfs/data/* | tr a-z A-Z >> /pfs/out/text", [("data", MAP)]))
    client.create_pipeline(pipeline("count", "wc -l < /pfs/upper/text > /pfs/out/lines", [("upper", REDUCE)]))
    client.create_pipeline(pipeline("final", "cp /pfs/count/lines /pfs/out/result", [("count", REDUCE)]))
    commit = put_lines(client, "data", files=3, lines=2)
    flushed = client.flush_commit([("data", commit)], timeout=TIMEOUT)
    assert [c.commit.repo.name for c in flushed] == ["data", "count", "final", "upper"]
    final = next(c for c in flushed if c.commit.repo.name == "final")
    assert client.get_file_bytes(("final", final.commit.id), "result") == b"6\n"
    assert {(p.repo.name, p.id) for p in final.provenance} >= {("data", commit)}
    only_upper = client.flush_commit([("data", commit)], to_repos=["upper"], timeout=TIMEOUT)
    assert [c.commit.repo.name for c in only_upper] == ["data", "upper"]


def test_empty_input_commit_makes_an_empty_job(client: Client) -> None:
    client.create_repo("data")
    client.create_pipeline(pipeline("copy", "cp -r /pfs/data/. /pfs/out/", [("data", MAP)]))
    with client.commit("data"):
        pass
    out = output(client, "data", "master/0")
    job = job_of(client, "copy", out.commit.id)
    assert job.state == pps_pb2.JOB_EMPTY


def test_run_empty_runs_on_an_empty_commit(client: Client) -> None:
    client.create_repo("data")
    request = pipeline("always", "echo ran > /pfs/out/ran", [("data", MAP)])
    request.inputs[0].run_empty = True
    client.create_pipeline(request)
    with client.commit("data"):
        pass
    out = output(client, "data", "master/0")
    assert job_of(client, "always", out.commit.id).state == pps_pb2.JOB_SUCCESS
    assert client.get_file_bytes(("always", out.commit.id), "ran") == b"ran\n"
