"""`job-shim <job-id>`: the program each pod of a job runs.

It claims a pod index from pachd (StartJob), lays out /pfs, runs the user's
command with its stdin lines, sends /pfs/out back and reports (FinishJob).
It exits 0 once it has reported, whatever the user's code did; any other exit
means the pod must run again (the executor replaces it).

`job-shim --warm` is a pod started ahead of its job (the local executor's pool,
pachd/executor/warm.py): with everything imported, it says `ready` on its
stdin (a socket), then reads its one assignment there, a JSON line
{"job_id": ..., "env": {...}}: the environment a pod started for that job
would have had (its credential among it), which replaces its own.
"""

from __future__ import annotations

import gc

# Off while the pod starts (_started turns it on): its imports make no garbage worth collecting.
# This module is a program, as pachctl/lean.py is: importing it is running the shim.
gc.disable()
import pachctl.lean  # noqa: E402,F401  # first: before grpc and protobuf load
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pachyderm_client import Client, FailedPreconditionError, NotFoundError, pod_metadata
from shim import config as shim_config

if TYPE_CHECKING:
    from pathlib import Path

    from pachyderm_client.proto import fuse_pb2

# Until StartJob has answered, a cold pod loads only what asking for its job takes: the client's
# connection and the generated modules of InternalJobAPI. The data path (shim.layout, the
# generated modules it calls, subprocess) is loaded once there is a job to run; a warm pod loads
# it before it says it is ready (PRELOADED, besides what it imports), so its job starts at once.
PRELOADED = (
    "shim.layout", "subprocess", "grpc._channel",
    "pachyderm_client.proto.pps_internal_pb2", "pachyderm_client.proto.pps_internal_pb2_grpc",
    "pachyderm_client.proto.pps_pb2", "pachyderm_client.proto.pfs_pb2_grpc",
    "pachyderm_client.proto.pods_pb2", "pachyderm_client.proto.pods_pb2_grpc",
)

logger = logging.getLogger("job-shim")

USAGE = "usage: job-shim JOB_ID | job-shim --warm\n\nThe program each pod of a job runs (see the README)."
READY = b"ready\n"  # what a warm pod says once it can take a job


class Steps:
    """Wall and CPU seconds (user, system: the shim's threads and the children it waited for)
    of each step of the pod, said on stderr at the end when asked (PACH_SHIM_TIMES=1)."""

    def __init__(self) -> None:
        self._last = os.times()
        self._spent = [("before", 0.0, self._last.user + self._last.children_user,
                        self._last.system + self._last.children_system)]

    def mark(self, step: str) -> None:
        now, last = os.times(), self._last
        self._spent.append((step, now.elapsed - last.elapsed, now.user + now.children_user - last.user - last.children_user,
                            now.system + now.children_system - last.system - last.children_system))
        self._last = now

    def say(self) -> None:
        print("job-shim: steps " + " ".join(f"{step}={wall:.3f},{user:.3f},{system:.3f}"
                                            for step, wall, user, system in self._spent), file=sys.stderr)


def run(job_id: str, config: shim_config.ShimConfig) -> int:
    metadata = pod_metadata(config.pod_index, config.pod_name)
    # Closed however the run ends: a channel left to the interpreter's exit can hang it there,
    # and a pod that hangs instead of exiting is never replaced.
    client = Client(config.pachd_address, tls_ca=config.tls_ca, auth_token=config.job_token, metadata=metadata)
    try:
        return _run(client, job_id, config, metadata)
    finally:
        client.close()


def _run(client: Client, job_id: str, config: shim_config.ShimConfig, metadata: tuple[tuple[str, str], ...]) -> int:
    steps = Steps()
    try:
        started = client.start_job(job_id)
    except (FailedPreconditionError, NotFoundError) as err:
        logger.info("nothing to do for job %s: %s", job_id, err.message)
        return 0
    finally:
        _started()
    from shim.layout import LayoutError, Wire, download, mount_name, upload, upload_over  # the data path: a job
    transform = started.transform
    if not transform.cmd:
        print("job-shim: the transform has no cmd to run", file=sys.stderr)
        client.finish_job(job_id, started.pod_index, False)
        return 0
    mounts = list(started.commit_mounts)
    out = next(m.commit for m in mounts if m.alias == "out")
    env = {k: v for k, v in config.environment.items() if k not in shim_config.OUT_ENV}
    env.update(transform.env)
    env["PACH_OUTPUT_COMMIT_ID"] = out.id
    for mount in mounts:
        if not mount.alias:
            env[f"PACH_{mount_name(mount).upper()}_COMMIT_ID"] = mount.commit.id
    stdin = "".join(line + "\n" for line in transform.stdin).encode()
    over_fuse = env.get("PACH_PFS_MODE", config.pfs_mode) == "fuse"  # a pipeline's env may choose
    report_times = env.get("PACH_SHIM_TIMES") == "1"  # the pod's environment or the pipeline's
    changes = None if over_fuse else _mounted_output(mounts, config)  # the overlay's changes folder, if mounted
    mounted = changes is not None
    steps.mark("start")
    if over_fuse:
        import asyncio  # only FUSE pods need an event loop

        code = asyncio.run(_execute_over_fuse(client, mounts, config, list(transform.cmd), stdin, env))
    else:
        wire = Wire(client.channel, metadata)  # the client's channel: it carries the pod's credential
        try:
            if mounted and not any(m.alias == "prev" and m.commit.id == config.out_base for m in mounts):
                raise LayoutError("out", OSError(0, f"it shows {config.out_base}, not the previous output"))
            baseline = download(wire, [m for m in mounts if not mounted or m.alias not in ("out", "prev")],
                                config.pfs_root)
        except LayoutError as err:  # the job fails, saying why (in its logs), rather than the pod crashing
            print(f"job-shim: {err}", file=sys.stderr)
            client.finish_job(job_id, started.pod_index, False)
            return 0
        steps.mark("layout")
        code = _execute(list(transform.cmd), stdin, env)
    steps.mark("code")
    success = code == 0 or code in transform.accept_return_code
    if success and not over_fuse:
        if changes is not None:
            upload_over(wire, out, config.pfs_root / "out", config.pfs_root / "prev", changes)
        else:
            upload(wire, out, config.pfs_root / "out", baseline)
        steps.mark("upload")
    if report_times:  # before FinishJob: once the job has ended, its logs may be read
        steps.say()
    client.finish_job(job_id, started.pod_index, success, exit_code=None if success else code)
    return 0


def _mounted_output(mounts: list[fuse_pb2.CommitMount], config: shim_config.ShimConfig) -> Path | None:
    """The overlay's changes folder if /pfs/out and /pfs/prev are already there, mounted by the
    executor over its laid-out copy of the previous output (pachd/executor/overlay.py), instead
    of copied here; else None."""
    if config.out_base and any(m.alias == "prev" for m in mounts):
        return config.out_changes
    return None


def _execute(cmd: list[str], stdin: bytes, env: dict[str, str]) -> int:
    import subprocess

    sys.stdout.flush()
    try:
        return subprocess.run(cmd, input=stdin, env=env).returncode
    except OSError as err:  # the command does not exist or cannot run
        print(f"job-shim: cannot run {cmd[0]}: {err}", file=sys.stderr)
        return 127


async def _execute_over_fuse(client: Client, mounts: list[fuse_pb2.CommitMount], config: shim_config.ShimConfig,
                             cmd: list[str], stdin: bytes, env: dict[str, str]) -> int:
    """Runs the command while /pfs is a FUSE mount of the commits: data is read as the code
    reads it, and each file written to /pfs/out is sent when it is closed."""
    import asyncio

    from pachctl.fuse import mount as fuse

    problem = fuse.fuse_problem()
    if problem:
        raise SystemExit(f"job-shim: FUSE mode is not possible here: {problem}")
    config.pfs_root.mkdir(parents=True, exist_ok=True)
    ready = asyncio.Event()
    serving = asyncio.create_task(fuse.serve(client, config.pfs_root, mounts=mounts, ready=ready))
    await ready.wait()
    try:
        sys.stdout.flush()
        process = await asyncio.create_subprocess_exec(*cmd, stdin=asyncio.subprocess.PIPE, env=env)
        await process.communicate(stdin)
        return process.returncode if process.returncode is not None else 1
    except OSError as err:
        print(f"job-shim: cannot run {cmd[0]}: {err}", file=sys.stderr)
        return 127
    finally:
        fuse.terminate()
        await serving


def wait_for_job(control: int = 0) -> str | None:
    """A warm pod's assignment: says it is ready on `control`, then reads which job it runs
    and that job's environment (None if pachd closed the pool instead)."""
    import json

    os.write(control, READY)
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(control, 65536)
        if not chunk:
            return None
        data += chunk
    null = os.open(os.devnull, os.O_RDONLY)  # the socket is done with: stdin reads nothing, as in a cold pod
    os.dup2(null, control)
    os.close(null)
    assignment = json.loads(data)
    shim_config.adopt({str(k): str(v) for k, v in assignment["env"].items()})
    return str(assignment["job_id"])


def _started() -> None:
    """The pod has started (StartJob answered, or a warm pod is ready): what start-up loaded is
    kept out of later collections (gc.freeze: it lives as long as the pod), which resume."""
    gc.freeze()
    gc.enable()


def preload() -> None:
    """Loads what a cold pod loads as it goes (PRELOADED), and runs the modules the client
    registered to load on first use among them."""
    for name in PRELOADED:
        vars(importlib.import_module(name))


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else list(argv)
    if args == ["--warm"]:
        preload()
        _started()
        job_id = wait_for_job()
        if job_id is None:
            raise SystemExit(0)
    elif len(args) == 1 and not args[0].startswith("-"):
        job_id = args[0]
    else:  # argparse would cost the pod's start-up more than the whole parse is worth
        print(USAGE, file=sys.stdout if args in (["-h"], ["--help"]) else sys.stderr)
        raise SystemExit(0 if args in (["-h"], ["--help"]) else 2)
    logging.basicConfig(level=logging.INFO, format="job-shim: %(message)s")
    raise SystemExit(run(job_id, shim_config.load()))


if __name__ == "__main__":
    main()
