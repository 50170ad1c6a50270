"""Pods as local processes confined by bubblewrap (real namespaces; we run as root)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from pachd.executor.namespace import Sandbox, probe, spawn_pod
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

ENV = {"PATH": "/usr/bin:/bin", "ONLY": "this"}


async def run(tmp_path: Path, name: str, script: str) -> tuple[int, str, Path]:
    pfs = tmp_path / name / "pfs"
    (pfs / "data").mkdir(parents=True)
    (pfs / "data" / "in").write_text(f"input of {name}\n")
    log = tmp_path / name / "log"
    pod = await spawn_pod(argv=["/bin/sh", "-c", script], env=ENV, pfs_dir=pfs, log_path=log)
    code = await asyncio.wait_for(pod.wait(), 30)
    return code, log.read_text(), pfs


def test_probe_says_pods_can_run_here() -> None:
    support = probe(Sandbox())
    assert support.supported, support.message


async def test_a_pod_sees_its_own_directory_at_pfs(tmp_path: Path) -> None:
    code, log, pfs = await run(tmp_path, "one", "cat /pfs/data/in; mkdir /pfs/out; echo written > /pfs/out/x; env")
    assert code == 0
    assert log.startswith("input of one\n")
    assert (pfs / "out" / "x").read_text() == "written\n"
    env = dict(line.split("=", 1) for line in log.splitlines()[1:] if "=" in line)
    assert {k: v for k, v in env.items() if k not in ("PWD", "SHLVL", "_")} == ENV
    assert not os.path.exists("/pfs/data")  # the host's /pfs is untouched


async def test_concurrent_pods_are_isolated(tmp_path: Path) -> None:
    script = "sleep 0.3; cat /pfs/data/in; ls /pfs"
    results = await asyncio.gather(*(run(tmp_path, f"pod{n}", script) for n in range(3)))
    for n, (code, log, _) in enumerate(results):
        assert code == 0 and log == f"input of pod{n}\ndata\n"


async def test_exit_codes_and_stderr(tmp_path: Path) -> None:
    code, log, _ = await run(tmp_path, "fails", "echo oops >&2; exit 3")
    assert code == 3 and log == "oops\n"


async def test_kill_takes_down_everything_the_pod_started(tmp_path: Path) -> None:
    pfs = tmp_path / "pfs"
    pfs.mkdir()
    marker = pfs / "started"  # the pod sees nothing of the host but its /pfs
    pod = await spawn_pod(argv=["/bin/sh", "-c", "sleep 1000 & sleep 1000 & touch /pfs/started; wait"], env=ENV,
                          pfs_dir=pfs, log_path=tmp_path / "log")
    wait_until(marker.exists, what="the pod's children")
    children = _sleepers()
    assert len(children) >= 2
    pod.kill()
    assert await asyncio.wait_for(pod.wait(), 10) < 0
    wait_until(lambda: not (set(children) & set(_sleepers())), what="every process of the pod to end")


def _sleepers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"1000"]:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("path", [""])
def test_pachd_names_the_requirement_when_pods_cannot_run(tmp_path: Path, path: str) -> None:
    pachd = PachdProcess(tmp_path / "data", env={"PATH": path}).start()
    try:
        assert "bubblewrap" in pachd.logs()  # what pods need, said at start-up
    finally:
        pachd.stop()


async def test_a_pod_is_started_off_the_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Forking pachd and building the sandbox's command line in the loop's thread held every call meanwhile.
    threads: list[threading.Thread] = []
    popen = subprocess.Popen

    def recorded(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread())
        return popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", recorded)
    code, _, _ = await run(tmp_path, "off", "true")
    assert code == 0
    assert threads and threading.main_thread() not in threads


async def test_any_number_may_wait_for_a_pod_and_one_leaving_stops_none(tmp_path: Path) -> None:
    pfs = tmp_path / "w" / "pfs"
    pod = await spawn_pod(argv=["/bin/sh", "-c", "exit 3"], env=ENV, pfs_dir=pfs, log_path=tmp_path / "w" / "log")
    waiters = [asyncio.ensure_future(pod.wait()) for _ in range(3)]
    waiters[0].cancel()
    assert await asyncio.wait_for(asyncio.gather(*waiters[1:]), 30) == [3, 3]
    assert await pod.wait() == 3
