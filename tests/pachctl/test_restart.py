"""pachctl and the client across a pachd restart: waiting calls reconnect and go on waiting.

pachd is killed -9 while `flush-commit`, `list-commit -b` or `inspect-job -b`
waits, and restarted on the same port and data; the waiting command finishes
as if nothing happened. Without a pachd to come back, the client fails after
its reconnect deadline with an error naming the address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from types import FrameType

from pachyderm_client import Client, UnavailableError
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port
from tests.support.wait import wait_until

TIMEOUT = 60.0


def _connected(pid: int, port: int) -> bool:
    """Whether process `pid` holds an established TCP connection to `port` on loopback."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    table = Path("/proc/net/tcp").read_text().splitlines()[1:] + Path("/proc/net/tcp6").read_text().splitlines()[1:]
    for line in table:  # gRPC may use IPv6 sockets with IPv4-mapped addresses
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
            return True
    return False


def _pachctl(pachd: PachdProcess, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ADDRESS": pachd.address}
    return subprocess.Popen([sys.executable, "-m", "pachctl.main", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _restart_under(pachd: PachdProcess, waiting: subprocess.Popen[str]) -> None:
    wait_until(lambda: _connected(waiting.pid, pachd.port), timeout=TIMEOUT, what="pachctl to connect")
    pachd.kill()
    pachd.start()
    if waiting.poll() is not None:
        raise AssertionError(f"pachctl ended across the restart: {waiting.communicate()}")


def _upstream_commit(client: Client) -> str:
    """A finished commit of `data`, whose flush waits for a commit of `out` (downstream) to finish."""
    client.create_repo("data")
    client.create_repo("out", ["data"])
    with client.commit("data") as commit:
        pass
    return commit.id


def _finish_downstream(client: Client, commit_id: str) -> str:
    downstream = client.start_commit("out", provenance=[("data", commit_id)])
    client.finish_commit(("out", downstream.id))
    return downstream.id


def test_flush_commit_waits_across_a_restart(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        commit_id = _upstream_commit(client)
    waiting = _pachctl(own_pachd, "flush-commit", f"data/{commit_id}")
    _restart_under(own_pachd, waiting)
    with Client(own_pachd.address) as client:
        downstream = _finish_downstream(client, commit_id)
    out, err = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0, err
    assert f"out/{downstream}" in out and "Stream removed" not in err


def test_list_commit_block_waits_across_a_restart(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as first:
            pass
    waiting = _pachctl(own_pachd, "list-commit", "-b", f"data/{first.id}")
    _restart_under(own_pachd, waiting)
    with Client(own_pachd.address) as client:
        second = client.start_commit("data")
    out, err = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0, err
    assert f"data/{second.id}" in out


def test_inspect_job_block_waits_across_a_restart(own_pachd: PachdProcess, tmp_path: Path) -> None:
    # The job's pod waits until the test listens on `gate` (pods see loopback, not the test's files).
    gate = free_port()
    wait = (f"import socket, time\nwhile True:\n    try:\n        socket.create_connection(('127.0.0.1', {gate})); break\n"
            "    except OSError:\n        time.sleep(0.1)\n")
    manifest = tmp_path / "job.json"
    manifest.write_text(json.dumps({"transform": {"cmd": [sys.executable, "-c", wait]}}))
    created = _pachctl(own_pachd, "create-job", "-f", str(manifest))
    job_id, err = created.communicate(timeout=TIMEOUT)
    assert created.returncode == 0, err
    waiting = _pachctl(own_pachd, "inspect-job", "-b", job_id.strip())
    _restart_under(own_pachd, waiting)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", gate))
        listening.listen(16)
        out, err = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0, (out, err)
    assert out.startswith(f"ID: {job_id.strip()} ")


def test_gives_up_naming_the_address(own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address, reconnect_timeout=2.0) as client:
        commit_id = _upstream_commit(client)
        failures: list[BaseException] = []

        def flush() -> None:
            try:
                client.flush_commit([("data", commit_id)])
            except BaseException as err:  # noqa: BLE001 - recorded for the assertion below
                failures.append(err)

        waiter = threading.Thread(target=flush)
        waiter.start()
        wait_until(lambda: _connected(os.getpid(), own_pachd.port), timeout=TIMEOUT, what="the client to connect")
        own_pachd.kill()
        waiter.join(timeout=TIMEOUT)
    assert len(failures) == 1 and isinstance(failures[0], UnavailableError)
    assert own_pachd.address in failures[0].message and "Stream removed" not in failures[0].message
    assert failures[0].hint


def test_reconnecting_starts_no_thread(own_pachd: PachdProcess) -> None:
    """A waiting call that lost pachd waits for it to come back in the caller's thread, as a
    first connection does: grpc's channel_ready_future() starts a thread that goes on watching
    the channel for 0.2 s after it is ready, and closing the channel waits for that thread."""
    started: list[str] = []

    def record(frame: FrameType, event: str, arg: object) -> None:  # runs first in each new thread
        started.append(threading.current_thread().name)
        sys.setprofile(None)

    def come_back() -> None:
        own_pachd.start()
        with Client(own_pachd.address) as other:
            other.start_commit("data")

    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as first:
            pass
        own_pachd.kill()  # before the call: it fails at once, and then waits for pachd to come back
        restarting = threading.Thread(target=come_back)
        restarting.start()
        threading.setprofile(record)  # threads started from here on
        try:
            commits = client.list_commit([("data", first.id)], block=True)
        finally:
            threading.setprofile(None)  # type: ignore[arg-type]
            restarting.join(timeout=TIMEOUT)
    assert [info.commit.id for info in commits] == ["master/1"]
    assert started == []
