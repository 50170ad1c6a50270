"""The local executor: each pod is a job-shim process on this machine.

Each pod runs confined like a container (see namespace.py): an unprivileged
user seeing its private /pfs, a read-only system and a private /tmp, so user
code reads /pfs/<input> and writes /pfs/out exactly as in a container, and
the pods of a job run side by side. Where pods cannot be confined, every job
fails with the reason instead of running unconfined.
A pod that exits non-zero (or is killed) is replaced, up to max_restarts
times per index, acting as Kubernetes' Job controller would.

With `warm_pods` > 0, pods of our own job shim come from a pool of pods
started ahead of their jobs, confined the same way (see warm.py): a job's
pod then costs no process start.

With `layouts`, each pipeline's newest output is kept laid out (outputs.py)
and a pod of a job with a parent gets it mounted as /pfs/prev and below its
/pfs/out (overlay.py) instead of the shim writing it there, a warm pod too:
its /pfs is a shared mount, so what pachd mounts there before assigning it
shows in it. A pachd that is not root mounts them inside a waiting pod's own
namespaces instead: a warm pod's, or a pod of our shim started to wait likewise.

Layout under `root` (the data dir's pods/ folder):
    <job>/<pod name>/pfs/   the pod's /pfs, removed when the pod ends
    <job>/<pod name>/layers/  its overlay's changes and work folders, likewise
    <job>/<pod name>/log    its stdout and stderr
    <job>/<pod name>/pid    "<pid> <start time>" while it may run
    .warm/<name>/           a warm pod's, until a job takes it
    .outputs/<repo>/        a pipeline's newest output, laid out (while pachd runs)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pachd.executor import bytecode, overlay
from pachd.executor.base import JobSpec, LogLine, PodEvent, PodPhase
from pachd.executor.namespace import RUN, NamespaceSupport, PodProcess, Sandbox, remove_pod_files, spawn_pod, start_time
from pachd.executor.outputs import Layouts, OutputTrees
from pachd.executor.warm import WARM_DIR, WarmPod, WarmPool, start_waiting

logger = logging.getLogger(__name__)

OUTPUTS_DIR = ".outputs"
OUT_ENV = ("PACH_OUT_BASE", "PACH_OUT_CHANGES")  # what tells the shim /pfs/out and /pfs/prev are mounted


@dataclass
class _Job:
    spec: JobSpec
    events: list[PodEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    running: dict[int, PodProcess] = field(default_factory=dict)  # index -> current pod
    attempts: dict[int, int] = field(default_factory=dict)  # index -> pods started (by any pachd: names them)
    crashes: dict[int, int] = field(default_factory=dict)  # index -> pods seen crashing (not killed by a restart)
    watchers: dict[str, asyncio.Task[None]] = field(default_factory=dict)  # pod name -> its wait task
    leased: set[str] = field(default_factory=set)  # names of pods mounting their pipeline's laid-out output


class LocalExecutor:
    def __init__(self, *, root: Path, pachd_address: str, shim: str, base_env: Mapping[str, str],
                 sandbox: Sandbox | None = None, support: NamespaceSupport | None = None, warm_pods: int = 0,
                 own_shim: bool = False, layouts: Layouts | None = None) -> None:
        """`shim` is the job-shim program; `base_env` what every pod gets besides
        the job's own variables (PATH, locale: never pachd's secrets); `sandbox`
        how pods are confined, and `support` whether this machine can;
        `warm_pods` how many pods of `shim` (which must be our job shim) wait for jobs;
        `own_shim`: `shim` is ours, whose bytecode recover() writes ahead (bytecode.py);
        `layouts` lays out commits (PFS's Checkouts): with it, and where pachd may mount
        (overlay.problem), our shim's pods get their previous output mounted, not copied."""
        self._root = root
        self._address = pachd_address
        self._shim = shim
        self._base_env = dict(base_env)
        self._sandbox = sandbox or Sandbox()
        self._support = support or NamespaceSupport(True, "")
        self._jobs: dict[str, _Job] = {}
        self._pool: WarmPool | None = None
        self._own_shim = own_shim
        self._outputs: OutputTrees | None = None
        if layouts is not None and own_shim:
            cannot = overlay.problem(root)
            if cannot:
                logger.info("pods copy their previous output in: %s", cannot)
            else:
                self._outputs = OutputTrees(root / OUTPUTS_DIR, layouts, self._owner)
                self._sandbox = dataclasses.replace(self._sandbox, layers=True)
        if warm_pods > 0 and self._support.supported:
            self._pool = WarmPool(root=root, size=warm_pods, argv=[shim, "--warm"],
                                  env={**self._base_env, **self._pod_address()}, sandbox=self._sandbox)

    async def recover(self) -> None:
        """Kills pods a previous pachd left running (their jobs will start new ones), and
        brings our shim's bytecode up to date for the pods to come."""
        if self._own_shim:
            await asyncio.to_thread(bytecode.write_ahead)
        for pid_file in [*self._root.glob("*/*/pid"), *self._root.glob(f"{WARM_DIR}/*/pid")]:
            _kill_recorded(pid_file)
        def release_left() -> None:  # what an earlier pachd's pods left: mounts, work folders to open for removal
            if os.geteuid() == 0 and self._root.exists():
                overlay.unmount_below(self._root)
            for layers in [*self._root.glob("*/*/layers"), *self._root.glob(f"{WARM_DIR}/*/layers")]:
                overlay.open_work(layers.parent)

        await asyncio.to_thread(release_left)
        await asyncio.to_thread(shutil.rmtree, self._root / WARM_DIR, True)
        await remove_pod_files(self._root / OUTPUTS_DIR)

    async def start(self, spec: JobSpec) -> None:
        job = self._jobs.get(spec.job_id)
        if job is None:
            job = self._jobs[spec.job_id] = _Job(spec)
            for pod_dir in (self._root / spec.job_id).glob("*"):  # pods of an earlier pachd
                earlier = int(pod_dir.name.rsplit("-", 2)[1])
                job.attempts[earlier] = job.attempts.get(earlier, 0) + 1
        job.spec = spec
        if self._pool is not None:
            self._pool.fill()  # from the first job on; a pachd that runs none starts none
        for index in spec.indices:
            if not self._support.supported:
                await self._emit(job, PodEvent(spec.job_id, index, f"{spec.job_id}-{index}", PodPhase.GAVE_UP,
                                               self._support.message))
            elif index not in job.running:
                await self._launch(job, index)

    async def _launch(self, job: _Job, index: int) -> None:
        attempt = job.attempts.get(index, 0)
        job.attempts[index] = attempt + 1
        name = f"{job.spec.job_id}-{index}-{attempt}"
        pod_dir = self._root / job.spec.job_id / name
        env = {**self._base_env, **job.spec.env, **self._pod_address(),
               "PACH_POD_INDEX": str(index), "PACH_POD_NAME": name}
        sandbox = dataclasses.replace(self._sandbox, fuse=env.get("PACH_PFS_MODE") == "fuse")
        if sandbox.fuse:
            sandbox = dataclasses.replace(sandbox, layers=False)  # a FUSE pod mounts all of its /pfs itself
        tree = await self._lease_output(job, name) if sandbox.layers else None
        process = await self._warm(job, pod_dir, env, tree) if sandbox == self._sandbox else None
        if process is None:
            argv = [self._shim if job.spec.command[0] == "job-shim" else job.spec.command[0], *job.spec.command[1:]]
            (pod_dir / "pfs").mkdir(parents=True, exist_ok=True)
            try:
                if tree is not None and overlay.in_pods():
                    process = await self._waiting_pod(job, name, pod_dir, env, tree)
                    if process is None:  # it could not wait for its job: one that copies instead
                        self._give_back(job, name)
                        tree = None
                if process is None:
                    if sandbox.layers:
                        await asyncio.to_thread(overlay.prepare, pod_dir / "pfs")
                    if tree is not None:
                        await self._mount_output(job, name, pod_dir, tree, env)
                    process = await spawn_pod(argv=argv, env=env, pfs_dir=pod_dir / "pfs", log_path=pod_dir / "log",
                                              sandbox=sandbox)
            except BaseException:
                self._pod_ended(job, name)  # no pod, so no watcher to undo its mounts
                raise
            (pod_dir / "pid").write_text(f"{process.pid} {start_time(process.pid)}")
        job.running[index] = process
        await self._emit(job, PodEvent(job.spec.job_id, index, name, PodPhase.STARTED))
        job.watchers[name] = asyncio.create_task(self._watch(job, index, name, process), name=f"pod-{name}")

    async def _warm(self, job: _Job, pod_dir: Path, env: dict[str, str], tree: Path | None) -> PodProcess | None:
        """A warm pod given this pod's job and environment (and its previous output mounted,
        given `tree`), or None (no pool, none left, not our shim)."""
        if self._pool is None or job.spec.command != ("job-shim", job.spec.job_id):
            return None
        pod = await self._pool.take()
        if pod is None:
            return None
        pod_dir.parent.mkdir(parents=True, exist_ok=True)
        pod.directory.rename(pod_dir)
        pod.directory = pod_dir
        return await self._hand_over(job, pod, pod_dir, env, tree)

    async def _hand_over(self, job: _Job, pod: WarmPod, pod_dir: Path, env: dict[str, str],
                         tree: Path | None) -> PodProcess | None:
        """Gives a waiting pod its job, its previous output mounted first given `tree` (its /pfs is
        a shared mount, or pachd mounts in its namespace: it shows in the pod); None, the pod
        discarded, if it ended just now (a cold pod instead)."""
        if tree is not None:
            await self._mount_output(job, pod.name, pod_dir, tree, env, pod.process.pid)
        try:
            await pod.assign(job.spec.job_id, env)
        except (OSError, ConnectionError):
            await pod.discard()
            for key in OUT_ENV:
                env.pop(key, None)
            return None
        return pod.process

    async def _waiting_pod(self, job: _Job, name: str, pod_dir: Path, env: dict[str, str],
                           tree: Path) -> PodProcess | None:
        """A pod of our shim started as a warm one, for this job alone: a pachd without root can mount
        the previous output only in a pod that runs, so the pod waits for its job until it is mounted.
        None if it ended first."""
        try:
            pod = await start_waiting(name, pod_dir, [self._shim, "--warm"],
                                      {**self._base_env, **self._pod_address()}, self._sandbox)
        except OSError as err:
            logger.warning("cannot start pod %s to wait for its job: %s", name, err)
            return None
        try:
            with contextlib.suppress(OSError, ConnectionError):
                if await pod.ready:
                    return await self._hand_over(job, pod, pod_dir, env, tree)
        except BaseException:  # cancelled (the job stopped): the pod must not run on
            pod.process.kill()
            raise
        logger.warning("pod %s ended before it could take its job: one that copies its previous output instead", name)
        await pod.discard()
        return None

    async def _lease_output(self, job: _Job, name: str) -> Path | None:
        """The pipeline's laid-out previous output, for the pod `name` to mount, if the job has one
        and our shim runs it; None where the shim copies it in instead."""
        spec = job.spec
        if self._outputs is None or not spec.previous_output or spec.command != ("job-shim", spec.job_id):
            return None
        tree = await self._outputs.lease(spec.output_repo, spec.previous_output)
        if tree is not None:
            job.leased.add(name)
        return tree

    async def _mount_output(self, job: _Job, name: str, pod_dir: Path, tree: Path, env: dict[str, str],
                            pid: int = 0) -> None:
        """Mounts `tree` as the pod's /pfs/prev and below its /pfs/out (in the namespace of the pod
        `pid` runs, where pachd is not root), and tells its shim so (in `env`); where that fails,
        the shim copies the previous output in instead."""
        try:
            if overlay.in_pods():
                await asyncio.to_thread(overlay.mount_in_pod, pid, pod_dir / "pfs", tree)
            else:
                await asyncio.to_thread(overlay.mount_output, pod_dir / "pfs", tree, self._owner)
        except OSError as err:
            logger.warning("pod %s copies its previous output in: cannot mount it: %s", name, err)
            for key in OUT_ENV:
                env.pop(key, None)
            return
        env.update({"PACH_OUT_BASE": job.spec.previous_output, "PACH_OUT_CHANGES": str(overlay.CHANGES)})

    def _pod_ended(self, job: _Job, name: str) -> None:
        """Detaches the pod's mounts and gives back its lease once it has ended (synchronous: also
        when its watcher is cancelled)."""
        if self._outputs is None:
            return
        overlay.release(self._root / job.spec.job_id / name)
        self._give_back(job, name)

    def _give_back(self, job: _Job, name: str) -> None:
        if self._outputs is not None and name in job.leased:
            job.leased.discard(name)
            self._outputs.release(job.spec.output_repo)

    @property
    def _owner(self) -> tuple[int, int]:
        return (self._sandbox.uid, self._sandbox.gid)

    def output_finished(self, repo: str, commit: str) -> None:
        if self._outputs is not None:
            self._outputs.lay_out_ahead(repo, commit)

    def output_dropped(self, repo: str) -> None:
        if self._outputs is not None:
            self._outputs.drop(repo)

    def _pod_address(self) -> dict[str, str]:
        """How the pod reaches pachd: its socket without a network, else loopback (TLS: trusting pachd's certificate)."""
        if self._sandbox.socket_dir is not None:
            return {"PACHD_ADDRESS": f"unix://{RUN}/pachd.sock"}
        host, port = self._address.rsplit(":", 1)
        # PACHD_PORT_650_TCP_*: as Kubernetes names the pachd service to v1.2's Go job-shim.
        env = {"PACHD_ADDRESS": self._address, "PACHD_PORT_650_TCP_ADDR": host, "PACHD_PORT_650_TCP_PORT": port}
        if self._sandbox.ca_file is not None:
            env["PACHD_TLS_CA"] = str(RUN / "ca.pem")
        return env

    async def _watch(self, job: _Job, index: int, name: str, process: PodProcess) -> None:
        try:
            code = await process.wait()
        finally:
            self._pod_ended(job, name)
        pod_dir = self._root / job.spec.job_id / name
        (pod_dir / "pid").unlink(missing_ok=True)
        job.running.pop(index, None)
        job.watchers.pop(name, None)
        try:
            await self._ended(job, index, name, code)
        finally:
            # Its data was sent (or, after a crash, is never used): only the log is kept, for get-logs.
            # Removed once the pod's end is reported (and a replacement started), at the lowest priority.
            await remove_pod_files(pod_dir / "pfs")
            if (pod_dir / "layers").exists():
                await remove_pod_files(pod_dir / "layers")

    async def _ended(self, job: _Job, index: int, name: str, code: int) -> None:
        if code == 0:
            await self._emit(job, PodEvent(job.spec.job_id, index, name, PodPhase.SUCCEEDED))
            return
        reason = f"exit code {code}" if code > 0 else f"killed by signal {-code}"
        job.crashes[index] = job.crashes.get(index, 0) + 1
        if job.crashes[index] > job.spec.max_restarts:
            await self._emit(job, PodEvent(job.spec.job_id, index, name, PodPhase.GAVE_UP, reason))
            return
        await self._emit(job, PodEvent(job.spec.job_id, index, name, PodPhase.CRASHED, reason))
        logger.info("pod %s crashed (%s); starting a replacement", name, reason)
        await self._launch(job, index)

    async def _emit(self, job: _Job, event: PodEvent) -> None:
        async with job.changed:
            job.events.append(event)
            job.changed.notify_all()

    async def events(self, job_id: str) -> AsyncIterator[PodEvent]:
        job = self._jobs.get(job_id)
        if job is None:
            return
        seen = 0
        while True:
            async with job.changed:
                await job.changed.wait_for(lambda: len(job.events) > seen)
                fresh = job.events[seen:]
            seen += len(fresh)
            for event in fresh:
                yield event

    async def logs(self, job_id: str) -> AsyncIterator[LogLine]:
        pods: list[tuple[int, int, Path]] = []
        for pod_dir in (self._root / job_id).glob("*"):
            _, index, attempt = pod_dir.name.rsplit("-", 2)
            pods.append((int(index), int(attempt), pod_dir / "log"))
        for pod_index, pod_attempt, log in sorted(pods):
            if log.exists():
                data = await asyncio.to_thread(log.read_bytes)
                for line in data.splitlines():
                    yield LogLine(pod_index, pod_attempt, line)

    async def delete(self, job_id: str) -> None:
        job = self._jobs.pop(job_id, None)
        if job is not None:
            await _stop(job)
        for pid_file in (self._root / job_id).glob("*/pid"):
            _kill_recorded(pid_file)
        await asyncio.to_thread(shutil.rmtree, self._root / job_id, True)

    def reserve(self, pods: int) -> None:
        if self._pool is not None:
            self._pool.reserve(pods)

    async def node_count(self) -> int:
        return 1

    async def close(self) -> None:
        """Stops every pod: a restarted pachd starts them again (see recover)."""
        if self._pool is not None:
            await self._pool.close()
        for job_id in list(self._jobs):
            await _stop(self._jobs.pop(job_id))
        if self._outputs is not None:
            await self._outputs.close()


async def _stop(job: _Job) -> None:
    """Kills the job's pods and stops watching them."""
    for task in job.watchers.values():
        task.cancel()
    for process in job.running.values():
        process.kill()
    await asyncio.gather(*(p.wait() for p in job.running.values()), return_exceptions=True)
    await asyncio.gather(*job.watchers.values(), return_exceptions=True)


def _kill_recorded(pid_file: Path) -> None:
    """Kills the pod a pid file names, if that very process still runs."""
    try:
        pid_text, started = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return
    if start_time(pid) == started:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    pid_file.unlink(missing_ok=True)
