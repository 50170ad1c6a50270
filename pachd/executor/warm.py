"""Warm pods: job-shim processes started ahead of their jobs (the local executor's pool).

A pod's start (bubblewrap, then Python importing gRPC and the protobuf
modules) costs more than a small job's whole work, and in a chain of
pipelines each stage pays it again. So the local executor keeps a few pods
started and confined exactly as a job's pod would be (the same Sandbox, the
same bwrap command line, the same user), each waiting, after its imports, for
an assignment: `job-shim --warm`, whose stdin is a socket to pachd. The pod
says `ready` there; pachd sends one JSON line, {"job_id": ..., "env": ...},
the environment a pod started for that job would have had, the job's
credential among it. A warm pod knows no job and holds no credential until it
is assigned, and it is assigned once: afterwards it is that job's pod like
any other, and the pool starts a fresh one in its place.

While it warms up and waits, a pod runs at a lower CPU priority (when pachd
is root, which alone can give the priority back), so starting the pool's
next pods does not slow the jobs running; a job that takes it (even one that
must wait for it to finish warming up) restores the normal priority first.
The pool holds at least `size` pods, and as many as the deepest chain of
pipelines is long (up to MOST): one commit then sets off a job per stage,
one after another, and each finds a pod ready rather than one still warming
up (tests/executor/test_warm_pool.py). Pods that keep ending before a job takes them (a broken
installation) pause the pool for a while, doubling up to a minute: jobs then
start their own pods as without a pool.

Layout: a warm pod lives in `<root>/.warm/<name>/` (pfs/, log, pid) until it
is assigned; its directory is then renamed to the job's pod directory (the
pod's /pfs is bound to the directory itself, so it follows).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pachd.executor import overlay
from pachd.executor.namespace import PodProcess, Sandbox, spawn_pod, start_time

logger = logging.getLogger(__name__)

READY = b"ready\n"  # the line a warm shim says once it can take a job (shim/main.py)
WARM_DIR = ".warm"  # under the executor's root; no job ID starts with a dot
WAITING_NICE = 10  # a warm pod's niceness until assigned (when pachd may restore it)
PAUSES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)  # after 3, 4, ... warm pods in a row ended unassigned
MOST = 8  # warm pods kept for a deep chain of pipelines, at most (each is an idle process)


@dataclass
class WarmPod:
    name: str
    directory: Path
    process: PodProcess
    writer: asyncio.StreamWriter
    ready: asyncio.Task[bool]  # done when the pod said ready (True) or ended first (False)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def assign(self, job_id: str, env: Mapping[str, str]) -> None:
        """Sends the pod its one job; the pod then runs as that job's."""
        _set_priority(self.process.pid, 0)
        self.writer.write(json.dumps({"job_id": job_id, "env": dict(env)}).encode() + b"\n")
        await self.writer.drain()
        self.writer.close()

    async def discard(self) -> None:
        self.process.kill()
        self.ready.cancel()
        self.writer.close()
        await asyncio.gather(self.ready, self.process.wait(), return_exceptions=True)
        await remove_directory(self.directory)


class WarmPool:
    """Up to `size` warm pods running `argv` (the shim with --warm) in `sandbox`, with `env`
    (what every pod gets: never a job's variables or credential)."""

    def __init__(self, *, root: Path, size: int, argv: Sequence[str], env: Mapping[str, str], sandbox: Sandbox) -> None:
        self._root = root / WARM_DIR
        self._size = size
        self._wanted = size  # size, or more for a deep chain of pipelines (see reserve)
        self._filled = False  # fill() was called: the pool is in use
        self._argv = list(argv)
        self._env = dict(env)
        self.sandbox = sandbox
        self._idle: list[WarmPod] = []
        self._starting: dict[str, asyncio.Task[None]] = {}  # pod name -> the task starting it
        self._closed = False
        self._failures = 0  # warm pods in a row that ended before a job took them
        self._paused_until = 0.0

    def reserve(self, pods: int) -> None:
        """Keeps at least `pods` pods (up to MOST; never fewer than `size`): the deepest chain of pipelines."""
        wanted = max(self._size, min(pods, MOST))
        if wanted != self._wanted:
            logger.debug("warm pods: %d kept (pipelines chain %d deep)", wanted, pods)
        self._wanted = wanted
        if self._filled:
            self.fill()

    def fill(self) -> None:
        """Starts pods until as many as wanted are idle or starting (in the background)."""
        self._filled = True
        if asyncio.get_running_loop().time() < self._paused_until:
            return
        while not self._closed and len(self._idle) + len(self._starting) < self._wanted:
            name = f"warm-{uuid.uuid4().hex[:12]}"
            self._starting[name] = asyncio.create_task(self._start(name), name=f"pod-{name}")

    async def _start(self, name: str) -> None:
        try:
            pod = await start_waiting(name, self._root / name, self._argv, self._env, self.sandbox)
        except OSError as err:
            logger.warning("cannot start a warm pod: %s", err)
            return
        finally:
            self._starting.pop(name, None)

        def said_ready(ready: asyncio.Task[bool]) -> None:
            if not ready.cancelled() and ready.exception() is None and ready.result():
                self._failures = 0

        pod.ready.add_done_callback(said_ready)
        pod.tasks.append(asyncio.create_task(self._forget_when_ended(pod)))
        self._idle.append(pod)

    async def _forget_when_ended(self, pod: WarmPod) -> None:
        """An idle pod that ends (killed, crashed) leaves the pool; another takes its place."""
        code = await pod.process.wait()
        if pod in self._idle:
            self._idle.remove(pod)
            logger.info("warm pod %s ended before a job took it (exit code %s)", pod.name, code)
            await remove_directory(pod.directory)
            self._ended_unassigned()
            self.fill()

    def _ended_unassigned(self) -> None:
        self._failures += 1
        if self._failures >= 3:
            pause = PAUSES[min(self._failures - 3, len(PAUSES) - 1)]
            self._paused_until = asyncio.get_running_loop().time() + pause
            logger.warning("%d warm pods in a row ended before a job took them; jobs start their own pods "
                           "for the next %ss", self._failures, pause)

    async def take(self) -> WarmPod | None:
        """A pod ready for a job (waiting for one still starting up if none is yet), or None."""
        while self._idle:
            ready = [p for p in self._idle if p.ready.done()]
            pod = (ready or self._idle)[0]
            self._idle.remove(pod)
            for task in pod.tasks:
                task.cancel()
            await asyncio.gather(*pod.tasks, return_exceptions=True)
            self.fill()
            if not pod.ready.done():  # a job waits for it now: it warms up at the jobs' priority
                logger.debug("warm pod %s taken while still warming up", pod.name)
                _set_priority(pod.process.pid, 0)
            with contextlib.suppress(OSError, ConnectionError):
                if await pod.ready:
                    return pod
            self._ended_unassigned()
            await pod.discard()
        self.fill()
        logger.debug("no warm pod left: the job starts its own")
        return None

    async def close(self) -> None:
        """Kills every warm pod (assigned ones are their jobs' now)."""
        self._closed = True
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        idle, self._idle = self._idle, []
        for pod in idle:
            for task in pod.tasks:
                task.cancel()
            await asyncio.gather(*pod.tasks, return_exceptions=True)
            await pod.discard()


async def start_waiting(name: str, directory: Path, argv: Sequence[str], env: Mapping[str, str],
                        sandbox: Sandbox) -> WarmPod:
    """Starts a pod of our shim (`argv` with --warm) that waits for its job in `directory`, at a lower
    priority until assigned; its directory is removed if it cannot be started."""
    ours, theirs = socket.socketpair()
    process: PodProcess | None = None
    try:
        try:
            if sandbox.layers:  # what pachd mounts in its /pfs once a job takes it reaches it
                await asyncio.to_thread(overlay.prepare, directory / "pfs")
            process = await spawn_pod(argv=argv, env=env, pfs_dir=directory / "pfs", log_path=directory / "log",
                                      sandbox=sandbox, stdin=theirs.fileno())
        finally:
            theirs.close()
        if os.geteuid() == 0:
            _set_priority(process.pid, WAITING_NICE)
        (directory / "pid").write_text(f"{process.pid} {start_time(process.pid)}")
        reader, writer = await asyncio.open_unix_connection(sock=ours)
    except BaseException:
        ours.close()
        if process is not None:
            process.kill()
            await asyncio.gather(process.wait(), return_exceptions=True)
        await remove_directory(directory)
        raise

    async def said_ready() -> bool:
        return await reader.readline() == READY

    return WarmPod(name, directory, process, writer, asyncio.create_task(said_ready()))


async def remove_directory(directory: Path) -> None:
    """Removes a pod's directory, its mounts detached first (else the removal stops at them)."""
    def remove() -> None:
        overlay.release(directory)
        shutil.rmtree(directory, True)

    await asyncio.to_thread(remove)


def _set_priority(pgid: int, nice: int) -> None:
    """Sets the niceness of every process of the pod (its process group)."""
    try:
        os.setpriority(os.PRIO_PGRP, pgid, nice)
    except OSError:  # ended meanwhile, or not ours to raise again (pachd is not root)
        pass
