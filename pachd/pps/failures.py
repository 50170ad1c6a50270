"""Why a job failed, as pachctl shows it: the reason pachd recorded (the same
words the console and GetLogs show), the pod it is about, the code's exit
code, and that pod's last lines of output."""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator
from dataclasses import dataclass

from pachd.executor.base import LogLine
from pachd.pps.secrets import scrub, secret_values
from pachd.pps.specs import JobRecord, JobState

LAST_LINES = 10


@dataclass(frozen=True, slots=True)
class Failure:
    job_id: str
    reason: str
    pod_index: int | None  # None: no pod failed (e.g. an input commit was cancelled)
    pod_name: str
    exit_code: int | None  # the user code's, when the pod's shim reported it
    last_lines: tuple[bytes, ...]  # the pod's last attempt's, secret values blanked out


async def failure_of(job: JobRecord, logs: AsyncIterator[LogLine], last: int = LAST_LINES) -> Failure | None:
    """The failure of `job` (None if it did not fail), reading the pod's lines from `logs`."""
    if job.state is not JobState.FAILURE:
        return None
    index = job.failed_pod
    if index is None or index >= job.pod_count:
        return Failure(job.id, job.reason, None, "", None, ())
    pod = job.pods[index]
    hidden = secret_values([job.transform])
    tail: collections.deque[bytes] = collections.deque(maxlen=max(last, 0))
    attempt = -1
    async for line in logs:
        if line.index != index or line.attempt < attempt:
            continue
        if line.attempt > attempt:
            attempt = line.attempt
            tail.clear()
        tail.append(scrub(line.line, hidden))
    return Failure(job.id, job.reason, index, pod.name, pod.exit_code, tuple(tail))
