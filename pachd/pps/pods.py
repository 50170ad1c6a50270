"""What the executor is asked to run for a job: a pure function of the job."""

from __future__ import annotations

from collections.abc import Sequence

from pachd.executor.base import JobSpec, SecretMount
from pachd.pps.specs import JobRecord

DEFAULT_IMAGE = "pachyderm/job-shim"


def env_name(repo: str) -> str:
    """PACH_<REPO>_COMMIT_ID: the input commit a job's pods see for `repo`."""
    return f"PACH_{repo.upper()}_COMMIT_ID"


TOKEN_ENV = "PACH_JOB_TOKEN"  # the pod's credential for its own job (pachd/auth.py)


def job_spec(job: JobRecord, *, indices: Sequence[int], default_image: str = DEFAULT_IMAGE,
             max_restarts: int = 3, token: str = "", previous_output: str = "") -> JobSpec:
    """`previous_output`: the parent job's output commit, which each pod's /pfs/out starts from."""
    env = {env_name(i.repo): i.commit for i in job.inputs}
    env.update(dict(job.transform.env))
    if token:
        env[TOKEN_ENV] = token
    labels = {"app": job.id, "suite": "pachyderm"}
    if job.pipeline:
        labels["pipeline"] = job.pipeline
    return JobSpec(
        job_id=job.id,
        pipeline=job.pipeline,
        pod_count=job.pod_count,
        indices=tuple(indices),
        image=job.transform.image or default_image,
        command=("job-shim", job.id),
        env=env,
        secrets=tuple(SecretMount(s.name, s.mount_path) for s in job.transform.secrets),
        max_restarts=max_restarts,
        labels=labels,
        output_repo=job.output_repo,
        previous_output=previous_output,
    )
