"""How pachctl prints: v1.2.3's pachctl output, byte for byte where the data are the same.

Tables are Go tabwriter tables with v1.2.3's settings (minimum cell width 20,
padding 3, every cell ended by a tab, so each line keeps its padding); sizes are
go-units' BytesSize ("1.696 KiB", "874 B"); times are go-units' HumanDuration
("3 minutes ago"). The detailed views (inspect-*) follow v1.2.3's templates,
spaces and all: those of PFS were HTML templates, so their values are
HTML-escaped as Go's html/template escapes them. Every function here returns or
writes text and takes `now` so golden files can pin the output.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, TextIO

from google.protobuf import timestamp_pb2

from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pfs_pb2, pps_jobs_pb2, pps_pb2
else:  # loaded by the first table that shows them (see pachctl/client/_lazy.py)
    pfs_pb2, pps_pb2 = lazy_module("pachyderm_client.proto.pfs_pb2"), lazy_module("pachyderm_client.proto.pps_pb2")
    pps_jobs_pb2 = lazy_module("pachyderm_client.proto.pps_jobs_pb2")

MIN_WIDTH = 20
PADDING = 3
_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&#34;", "'": "&#39;", "+": "&#43;", "\0": "\ufffd"}



@functools.cache
def job_states() -> dict[int, str]:
    return {pps_pb2.JOB_PULLING: "pulling", pps_pb2.JOB_RUNNING: "running", pps_pb2.JOB_FAILURE: "failure",
            pps_pb2.JOB_SUCCESS: "success", pps_pb2.JOB_EMPTY: "empty"}


@functools.cache
def pipeline_states() -> dict[int, str]:
    return {pps_pb2.PIPELINE_IDLE: "idle", pps_pb2.PIPELINE_RUNNING: "running",
            pps_pb2.PIPELINE_RESTARTING: "restarting", pps_pb2.PIPELINE_FAILURE: "failure",
            pps_pb2.PIPELINE_STOPPED: "stopped"}


# -- units ---------------------------------------------------------------------


def tabulate(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A Go tabwriter table (minwidth 20, padding 3) of rows whose every cell ends with a tab."""
    lines = [tuple(header), *map(tuple, rows)]
    count = len(lines[0])
    if all(len(line) == count for line in lines):  # every row as wide as the header: one format per row
        widths = [max(MIN_WIDTH, longest + PADDING) if (longest := max(map(len, column))) else MIN_WIDTH
                  for column in zip(*lines)]
        row = "".join(f"%-{width}s" for width in widths) + "\n"
        return "".join([row % line for line in lines])
    widths = [MIN_WIDTH] * max((len(line) for line in lines), default=0)
    for line in lines:
        for i, cell in enumerate(line):
            if cell:
                widths[i] = max(widths[i], len(cell) + PADDING)
    return "".join("".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + "\n" for line in lines)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO | None = None) -> None:
    (out or sys.stdout).write(tabulate(header, rows))


def size(count: int) -> str:
    value = float(count)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.4g} {_UNITS[unit]}"


def duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 3:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def ago(stamp: timestamp_pb2.Timestamp, now: float | None = None) -> str:
    return f"{duration((now if now is not None else time.time()) - seconds(stamp))} ago"


def between(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp) -> str:
    return duration(seconds(end) - seconds(start))


def _html(text: str) -> str:
    return "".join(_HTML.get(c, c) for c in text)


# -- PFS -----------------------------------------------------------------------


def repo_rows(infos: Iterable[pfs_pb2.RepoInfo], now: float | None = None) -> str:
    return tabulate(["NAME", "CREATED", "SIZE"], ([i.repo.name, ago(i.created, now), size(i.size_bytes)] for i in infos))


def repo_info(info: pfs_pb2.RepoInfo, now: float | None = None) -> str:
    text = f"Name: {info.repo.name}\nCreated: {ago(info.created, now)}\nSize: {size(info.size_bytes)}"
    if info.provenance:
        text += "\nProvenance: " + "".join(f" {_html(r.name)} " for r in info.provenance) + " "
    return text + "\n"


def commit_rows(infos: Iterable[pfs_pb2.CommitInfo], now: float | None = None) -> str:
    rows = []
    for info in infos:
        parent = info.parent_commit.id if info.HasField("parent_commit") else "<none>"
        finished = ago(info.finished, now) if info.HasField("finished") else ""
        rows.append([info.branch, f"{info.commit.repo.name}/{info.commit.id}", parent, ago(info.started, now),
                     finished, size(info.size_bytes)])
    return tabulate(["BRANCH", "REPO/ID", "PARENT", "STARTED", "FINISHED", "SIZE"], rows)


def commit_info(info: pfs_pb2.CommitInfo, now: float | None = None) -> str:
    text = f"Commit: {_html(info.commit.repo.name)}/{_html(info.commit.id)}"
    if info.HasField("parent_commit"):
        text += f"\nParent: {_html(info.parent_commit.id)} "
    text += " "
    if info.branch:
        text += f"\nBranch: {_html(info.branch)} "
    text += f"\nStarted: {ago(info.started, now)}"
    if info.HasField("finished"):
        text += f"\nFinished: {ago(info.finished, now)} "
    text += f"\nSize: {size(info.size_bytes)}"
    if info.provenance:
        text += "\nProvenance: " + "".join(f" {_html(p.repo.name)}/{_html(p.id)} " for p in info.provenance) + " "
    if info.cancelled:
        text += "\nCANCELLED "
    return text + "\n"


def _file_type(info: pfs_pb2.FileInfo) -> str:
    return "file" if info.file_type == pfs_pb2.FILE_TYPE_REGULAR else "dir"


def file_rows(infos: Iterable[pfs_pb2.FileInfo], *, recurse: bool = False, fast: bool = False,
              now: float | None = None) -> str:
    """The list-file table. A listing's entries mostly share their sizes and
    modification times, so each distinct one is formatted once (against one `now`)."""
    now = time.time() if now is None else now
    directory, regular = pfs_pb2.FILE_TYPE_DIR, pfs_pb2.FILE_TYPE_REGULAR
    sizes: dict[int, str] = {}
    times: dict[tuple[int, int], str] = {}
    rows = []
    for info in infos:
        kind, count, stamp = info.file_type, info.size_bytes, info.modified
        if count == 0 and (not recurse if kind == directory else fast):
            shown = "-"
        elif (shown := sizes.get(count, "")) == "":
            shown = sizes[count] = size(count)
        if (when := times.get(key := (stamp.seconds, stamp.nanos), "")) == "":
            when = times[key] = f"{duration(now - (key[0] + key[1] / 1e9))} ago"
        rows.append((info.file.path, "file" if kind == regular else "dir", when, info.commit_modified.id, shown))
    return tabulate(["NAME", "TYPE", "MODIFIED", "LAST_COMMIT_MODIFIED", "SIZE"], rows)


def file_info(info: pfs_pb2.FileInfo, now: float | None = None) -> str:
    commit = info.file.commit
    text = (f"Path: {_html(commit.repo.name)}/{_html(commit.id)}/{_html(info.file.path)}\n"
            f"Type: {_file_type(info)}\nModifed: {ago(info.modified, now)}\nSize: {size(info.size_bytes)}\n"
            f"Commit Modified: {_html(info.commit_modified.repo.name)}/{_html(info.commit_modified.id)}")
    if info.children:
        text += "\nChildren: " + "".join(f" {_html(child.path)} " for child in info.children) + " "
    return text + "\n"


# -- PPS -----------------------------------------------------------------------


def _go_float(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def parallelism(spec: pps_pb2.ParallelismSpec | None) -> str:
    """The spec as Go printed it: its compact protobuf text, each field followed by a space."""
    if spec is None:
        return "<nil>"
    text = ""
    if spec.strategy:
        text += f"strategy:{pps_pb2.ParallelismSpec.Strategy.Name(spec.strategy)} "
    if spec.constant:
        text += f"constant:{spec.constant} "
    if spec.coefficient:
        text += f"coefficient:{_go_float(spec.coefficient)} "
    return text


def transform(value: pps_pb2.Transform) -> str:
    """The transform as Go's json.MarshalIndent wrote it (omitting empty fields; `&` escaped)."""
    fields: dict[str, object] = {}
    if value.image:
        fields["image"] = value.image
    if value.cmd:
        fields["cmd"] = list(value.cmd)
    if value.env:
        fields["env"] = dict(sorted(value.env.items()))
    if value.secrets:
        fields["secrets"] = [{k: v for k, v in (("name", s.name), ("mount_path", s.mount_path)) if v}
                             for s in value.secrets]
    if value.stdin:
        fields["stdin"] = list(value.stdin)
    if value.accept_return_code:
        fields["accept_return_code"] = list(value.accept_return_code)
    if value.debug:
        fields["debug"] = True
    return json.dumps(fields, indent=2, ensure_ascii=False).replace("&", "\\u0026")


def _job_spec(info: pps_pb2.JobInfo | pps_pb2.PipelineInfo) -> pps_pb2.ParallelismSpec | None:
    return info.parallelism_spec if info.HasField("parallelism_spec") else None


def job_rows(infos: Iterable[pps_pb2.JobInfo], now: float | None = None) -> str:
    rows = []
    for info in infos:
        output = f"{info.output_commit.repo.name}/{info.output_commit.id}" if info.HasField("output_commit") else "-"
        took = between(info.started, info.finished) if info.HasField("finished") else "-"
        rows.append([info.job.id, output, ago(info.started, now), took, job_states().get(info.state, "-")])
    return tabulate(["ID", "OUTPUT", "STARTED", "DURATION", "STATE"], rows)


def job_info(info: pps_pb2.JobInfo, now: float | None = None) -> str:
    text = f"ID: {info.job.id} "
    if info.HasField("parent_job"):
        text += f"\nParent: {info.parent_job.id} "
    text += f"\nStarted: {ago(info.started, now)} "
    if info.HasField("finished"):
        text += f"\nDuration: {between(info.started, info.finished)} "
    inputs = tabulate(["NAME", "COMMIT", "PARTITION", "INCREMENTAL"],
                      ([i.commit.repo.name, i.commit.id, pps_pb2.Partition.Name(i.method.partition),
                        pps_pb2.Incremental.Name(i.method.incremental)] for i in info.inputs))
    return (text + f"\nState: {job_states().get(info.state, '-')}\nParallelismSpec: {parallelism(_job_spec(info))}\n"
            f"Inputs:\n{inputs}Transform:\n{transform(info.transform)}\n")


def job_failure(failure: pps_jobs_pb2.Failure) -> str:
    """inspect-job's lines after v1.2's: why the job failed, the pod, its exit code and last lines."""
    text = f"Failure: {failure.reason}\n"
    if failure.HasField("pod_index"):
        text += f"Pod: {failure.pod_index}" + (f" ({failure.pod_name})" if failure.pod_name else "") + "\n"
    if failure.HasField("exit_code"):
        text += f"Exit Code: {failure.exit_code}\n"
    if failure.last_lines:
        text += "Last Lines:\n" + "".join(f"{failure.pod_index} | {_text(line)}\n" for line in failure.last_lines)
    return text


def job_failure_lines(failures: Iterable[pps_jobs_pb2.Failure]) -> str:
    """list-job's lines under v1.2's table: per failed job, why, and its pod's last line."""
    lines = []
    for failure in failures:
        last = f' (last line: "{_text(failure.last_lines[-1])}")' if failure.last_lines else ""
        lines.append(f"{failure.job.id}: {failure.reason}{last}\n")
    return "\n" + "".join(lines) if lines else ""


def _text(line: bytes) -> str:
    return line.decode(errors="replace")


def pipeline_rows(infos: Iterable[pps_pb2.PipelineInfo]) -> str:
    return tabulate(["NAME", "INPUT", "OUTPUT", "STATE"],
                    ([p.pipeline.name, ", ".join(i.repo.name for i in p.inputs),
                      p.output_repo.name if p.HasField("output_repo") else "", pipeline_states().get(p.state, "-")]
                     for p in infos))


def pipeline_info(info: pps_pb2.PipelineInfo, now: float | None = None) -> str:
    inputs = tabulate(["NAME", "PARTITION", "INCREMENTAL"],
                      ([i.repo.name, pps_pb2.Partition.Name(i.method.partition),
                        pps_pb2.Incremental.Name(i.method.incremental)] for i in info.inputs))
    error = f" Recent Error: {info.recent_error} " if info.recent_error else ""
    counts = "".join(f"{job_states()[state]}: {info.job_counts.get(state, 0)}\t"
                     for state in (pps_pb2.JOB_PULLING, pps_pb2.JOB_RUNNING, pps_pb2.JOB_FAILURE, pps_pb2.JOB_SUCCESS))
    return (f"Name: {info.pipeline.name}\nCreated: {ago(info.created_at, now)}\n"
            f"State: {pipeline_states().get(info.state, '-')}\nParallelismSpec: {parallelism(_job_spec(info))}\n"
            f"Inputs:\n{inputs}Transform:\n{transform(info.transform)}\n{error}\nJob Counts:\n{counts}\n")


def version_rows(rows: Sequence[Sequence[str]]) -> str:
    return tabulate(["COMPONENT", "VERSION"], rows)
