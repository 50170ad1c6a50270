"""Where PPS keeps its metadata in the KV store. No other module builds keys.

    pps/pipelines/<name>                          PipelineRecord
    pps/heads/<name>                              ID of the pipeline's newest job (current version)
    pps/triggers/<name>/<version>/<repo>/<commit> job ID made for that input commit
    pps/jobs/<id>                                 JobRecord
    pps/pipeline-jobs/<name>/<id>                 (empty) index of a pipeline's jobs
    pps/owners/<name> or pps/owners/job:<id>      the replica driving it (kept alive by its lease)
"""

from __future__ import annotations

ROOT = "pps/"


def pipeline(name: str) -> str:
    return f"pps/pipelines/{name}"


def pipelines() -> str:
    return "pps/pipelines/"


def head(name: str) -> str:
    return f"pps/heads/{name}"


def trigger(name: str, version: int, repo: str, commit_id: str) -> str:
    return f"pps/triggers/{name}/{version:010d}/{repo}/{commit_id}"


def triggers(name: str, version: int | None = None) -> str:
    return f"pps/triggers/{name}/" if version is None else f"pps/triggers/{name}/{version:010d}/"


def trigger_commit(key: str) -> tuple[str, str]:
    """(repo, commit ID) of a trigger key."""
    repo, branch, number = key.split("/")[-3:]
    return repo, f"{branch}/{number}"


def job(job_id: str) -> str:
    return f"pps/jobs/{job_id}"


def jobs() -> str:
    return "pps/jobs/"


def pipeline_job(name: str, job_id: str) -> str:
    return f"pps/pipeline-jobs/{name}/{job_id}"


def pipeline_jobs(name: str) -> str:
    return f"pps/pipeline-jobs/{name}/"


def owner(owned: str) -> str:
    return f"pps/owners/{owned}"


def owners() -> str:
    return "pps/owners/"


# -- reading keys back (the consistency checker walks every key) ---------------


def all_heads() -> str:
    return "pps/heads/"


def all_triggers() -> str:
    return "pps/triggers/"


def all_pipeline_jobs() -> str:
    return "pps/pipeline-jobs/"


def name_from_key(key: str) -> str:
    """The last component of a pipeline, head, job or pipeline-jobs key: the pipeline name or job ID."""
    return key.rsplit("/", 1)[1]


def trigger_from_key(key: str) -> tuple[str, int, str, str]:
    """(pipeline, version, repo, commit ID) of a trigger key."""
    _, _, name, version, repo, branch, number = key.split("/")
    return name, int(version), repo, f"{branch}/{number}"


def pipeline_job_from_key(key: str) -> tuple[str, str]:
    """(pipeline, job ID) of a pipeline-jobs index entry."""
    _, _, name, job_id = key.split("/")
    return name, job_id


def pod_secret() -> str:
    """The key that signs every pod's job credential (shared by all replicas)."""
    return "pps/pod-secret"
