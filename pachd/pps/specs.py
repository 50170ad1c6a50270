"""PPS values: transforms, inputs, methods, parallelism; and the records kept
in the KV store for pipelines and jobs, with their JSON encoding.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass
from typing import Any


class Partition(enum.Enum):
    BLOCK = 0
    FILE = 1
    REPO = 2


class Incremental(enum.Enum):
    NONE = 0  # every pod sees all the data of its shard
    DIFF = 1  # only what is new since the parent job
    FULL = 2  # whole files, but only those that changed


@dataclass(frozen=True, slots=True)
class Method:
    partition: Partition = Partition.BLOCK
    incremental: Incremental = Incremental.DIFF


MAP = Method(Partition.BLOCK, Incremental.DIFF)  # the default


@dataclass(frozen=True, slots=True)
class Secret:
    name: str
    mount_path: str


@dataclass(frozen=True, slots=True)
class Transform:
    image: str = ""
    cmd: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # sorted (name, value)
    secrets: tuple[Secret, ...] = ()
    stdin: tuple[str, ...] = ()
    accept_return_code: tuple[int, ...] = ()
    debug: bool = False


class Strategy(enum.Enum):
    CONSTANT = 0
    COEFFICIENT = 1


@dataclass(frozen=True, slots=True)
class Parallelism:
    strategy: Strategy = Strategy.CONSTANT
    constant: int = 0  # 0: one pod per node
    coefficient: float = 0.0


@dataclass(frozen=True, slots=True)
class PipelineInput:
    repo: str
    method: Method = MAP
    run_empty: bool = False


@dataclass(frozen=True, slots=True)
class JobInput:
    repo: str
    commit: str  # commit ID in `repo`
    method: Method = MAP
    run_empty: bool = False


class PipelineState(enum.Enum):
    IDLE = 0
    RUNNING = 1
    RESTARTING = 2
    FAILURE = 3
    STOPPED = 4


class JobState(enum.Enum):
    PULLING = 0
    RUNNING = 1
    FAILURE = 2
    SUCCESS = 3
    EMPTY = 4

    @property
    def done(self) -> bool:
        return self in (JobState.FAILURE, JobState.SUCCESS, JobState.EMPTY)


class PodState(enum.Enum):
    PENDING = "pending"  # waiting for a pod to claim it with StartJob
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"


@dataclass(frozen=True, slots=True)
class PipelineRecord:
    name: str
    transform: Transform
    parallelism: Parallelism
    inputs: tuple[PipelineInput, ...]
    created: float
    version: int = 1  # bumped by update-pipeline; jobs of older versions no longer count
    stopped: bool = False
    state: PipelineState = PipelineState.IDLE
    recent_error: str = ""
    deleting: bool = False  # delete-pipeline began: its owner stops and removes its jobs, then the record


@dataclass(frozen=True, slots=True)
class PodRecord:
    state: PodState = PodState.PENDING
    commit: str = ""  # the pod's own output commit (in the output repo)
    name: str = ""  # the pod that claimed this index
    attempt: int = 0  # how many pods have claimed this index
    exit_code: int | None = None  # on failure, the user code's, when the shim reported it


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: str
    pipeline: str  # "" for a job made by create-job
    pipeline_version: int
    transform: Transform
    parallelism: Parallelism
    inputs: tuple[JobInput, ...]
    output_repo: str
    created: float
    parent: str = ""  # parent job ID: its output is this job's /pfs/prev
    output_commit: str = ""  # set once started
    shard_moduli: tuple[int, ...] = ()  # one per input; their product is the pod count
    pods: tuple[PodRecord, ...] = ()
    state: JobState = JobState.PULLING
    started: float | None = None
    finished: float | None = None
    reason: str = ""  # why it failed
    failed_pod: int | None = None  # the index of the pod the reason is about, if any
    waiting: str = ""  # while PULLING: why a pod cannot start yet (its image cannot be had)

    @property
    def pod_count(self) -> int:
        return len(self.pods)


# -- encoding -------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def encode(record: PipelineRecord | JobRecord) -> bytes:
    return json.dumps(_plain(asdict(record)), separators=(",", ":")).encode()


def _transform(d: dict[str, Any]) -> Transform:
    return Transform(
        image=d["image"],
        cmd=tuple(d["cmd"]),
        env=tuple((k, v) for k, v in d["env"]),
        secrets=tuple(Secret(**s) for s in d["secrets"]),
        stdin=tuple(d["stdin"]),
        accept_return_code=tuple(d["accept_return_code"]),
        debug=d["debug"],
    )


def _method(d: dict[str, Any]) -> Method:
    return Method(Partition[d["partition"]], Incremental[d["incremental"]])


def _parallelism(d: dict[str, Any]) -> Parallelism:
    return Parallelism(Strategy[d["strategy"]], d["constant"], d["coefficient"])


def decode_pipeline(raw: bytes) -> PipelineRecord:
    d = json.loads(raw)
    return PipelineRecord(
        name=d["name"],
        transform=_transform(d["transform"]),
        parallelism=_parallelism(d["parallelism"]),
        inputs=tuple(PipelineInput(i["repo"], _method(i["method"]), i["run_empty"]) for i in d["inputs"]),
        created=d["created"],
        version=d["version"],
        stopped=d["stopped"],
        state=PipelineState[d["state"]],
        recent_error=d["recent_error"],
        deleting=d.get("deleting", False),
    )


def decode_job(raw: bytes) -> JobRecord:
    d = json.loads(raw)
    return JobRecord(
        id=d["id"],
        pipeline=d["pipeline"],
        pipeline_version=d["pipeline_version"],
        transform=_transform(d["transform"]),
        parallelism=_parallelism(d["parallelism"]),
        inputs=tuple(JobInput(i["repo"], i["commit"], _method(i["method"]), i["run_empty"]) for i in d["inputs"]),
        output_repo=d["output_repo"],
        created=d["created"],
        parent=d["parent"],
        output_commit=d["output_commit"],
        shard_moduli=tuple(d["shard_moduli"]),
        pods=tuple(PodRecord(PodState[p["state"]], p["commit"], p["name"], p["attempt"], p.get("exit_code"))
                   for p in d["pods"]),
        state=JobState[d["state"]],
        started=d["started"],
        finished=d["finished"],
        reason=d["reason"],
        failed_pod=d.get("failed_pod"),
        waiting=d.get("waiting", ""),
    )

