"""What the console's pages show, as plain JSON-ready values, read in-process
from the PFS and PPS layers (never over gRPC, never from their keys)."""

from __future__ import annotations

from typing import Any

from pachd.console import graph
from pachd.pfs import Pfs
from pachd.pfs.commits import CommitStatus
from pachd.pfs.files import FileInfo
from pachd.pfs.records import CommitRecord, FileKind
from pachd.pps import Pps
from pachd.pps.secrets import shown_env
from pachd.pps.specs import JobRecord, JobState

Json = dict[str, Any]


async def dag(pfs: Pfs, pps: Pps) -> Json:
    """Every repo and pipeline, placed, with their edges and states."""
    repos = await pfs.repos.list()
    pipelines = await pps.pipelines.list()
    edges = graph.edges_of([r.name for r in repos], {p.record.name: [i.repo for i in p.record.inputs]
                                                     for p in pipelines})
    nodes: dict[str, Json] = {}
    for repo in repos:
        newest = await _newest_commit(pfs, repo.name)
        nodes[graph.repo_node(repo.name)] = {
            "kind": "repo", "name": repo.name, "size_bytes": repo.size_bytes,
            "newest_commit": newest.id if newest else None,
        }
    for info in pipelines:
        record = info.record
        last = await pps.jobs.list(record.name)
        nodes[graph.pipeline_node(record.name)] = {
            "kind": "pipeline", "name": record.name, "state": record.state.name,
            "last_job": {"id": last[0].id, "state": last[0].state.name} if last else None,
        }
    for placed in graph.layout(nodes, edges):
        nodes[placed.id].update(id=placed.id, x=placed.x, y=placed.y)
    return {"nodes": list(nodes.values()), "edges": [{"from": a, "to": b} for a, b in edges]}


async def _newest_commit(pfs: Pfs, repo: str) -> CommitRecord | None:
    commits = await pfs.commits.list([(repo, "")])
    return max(commits, key=lambda c: c.started, default=None)


def commit_json(record: CommitRecord) -> Json:
    parent = record.parent
    return {
        "repo": record.repo, "id": record.id, "branch": record.branch,
        "parent": f"{parent[0]}/{parent[1]}" if parent else None,
        "started": record.started, "finished": record.finished, "size_bytes": record.size_bytes,
        "cancelled": record.cancelled, "open": record.is_open,
        "provenance": [{"repo": r, "id": f"{b}/{n}"} for r, b, n in record.provenance],
    }


async def repo(pfs: Pfs, name: str) -> Json:
    record = await pfs.repos.inspect(name)
    commits = await pfs.commits.list([(name, "")], status=CommitStatus.CANCELLED)
    branches = await pfs.commits.list_branches(name)
    return {
        "name": record.name, "created": record.created, "size_bytes": record.size_bytes,
        "provenance": list(record.provenance), "branches": branches,
        "commits": [commit_json(c) for c in sorted(commits, key=lambda c: c.started, reverse=True)],
    }


def _file_json(info: FileInfo) -> Json:
    return {"path": info.path, "type": "dir" if info.kind is FileKind.DIR else "file",
            "size_bytes": info.size, "modified": info.modified}


async def files(pfs: Pfs, repo: str, commit: str, path: str) -> Json:
    record = await pfs.commits.inspect(repo, commit)
    listing = await pfs.files.list(repo, commit, path)
    return {"commit": commit_json(record), "path": path, "files": [_file_json(i) for i in listing]}


def job_json(job: JobRecord) -> Json:
    return {
        "id": job.id, "pipeline": job.pipeline, "state": job.state.name,
        "created": job.created, "started": job.started, "finished": job.finished,
        "inputs": [{"repo": i.repo, "id": i.commit} for i in job.inputs],
        "output": {"repo": job.output_repo, "id": job.output_commit} if job.output_commit else None,
        "reason": job.reason if job.state is JobState.FAILURE else "",
    }


async def jobs(pps: Pps, pipeline: str = "") -> Json:
    return {"jobs": [job_json(j) for j in await pps.jobs.list(pipeline)]}


async def job(pps: Pps, job_id: str) -> Json:
    record = await pps.jobs.inspect(job_id)
    shown = job_json(record)
    shown["transform"] = {"image": record.transform.image, "cmd": list(record.transform.cmd),
                          "stdin": list(record.transform.stdin), "env": shown_env(record.transform)}
    shown["pods"] = [{"index": k, "state": p.state.value, "name": p.name, "attempt": p.attempt, "commit": p.commit}
                     for k, p in enumerate(record.pods)]
    failure = await pps.failure(record)  # what pachctl inspect-job shows too
    shown["failure"] = None if failure is None else {
        "pod_index": failure.pod_index, "pod_name": failure.pod_name, "exit_code": failure.exit_code,
        "last_lines": [line.decode("utf-8", "replace") for line in failure.last_lines],
    }
    return shown
