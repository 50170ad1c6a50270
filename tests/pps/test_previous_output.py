"""A job's previous output, seen at /pfs/prev and as /pfs/out's start, without the pod copying it.

Local pods of a job with a parent get the pipeline's laid-out output mounted (pachd/executor/
overlay.py): what the code changes in /pfs/out is sent, and only that; what it leaves is never
written by the pod. Each check looks from the pod (what its code sees) or from the commits.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.pachd import PachdProcess, pachd_as_nobody
from tests.support.pipelines import MAP, pipeline
from tests.support.wait import wait_until

TIMEOUT = 90

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runs pachd as root, and as nobody (which takes root)")

# Each job (one per commit of `data`) does something else to the output its parent left.
SCRIPT = r"""
set -e
case "$PACH_DATA_COMMIT_ID" in
master/0)
    printf 'one\n' > /pfs/out/a; printf 'bee\n' > /pfs/out/b; printf 'sea\n' > /pfs/out/c
    mkdir -p /pfs/out/d/deep /pfs/out/e /pfs/out/m/inner
    printf 'x\n' > /pfs/out/d/x; printf 'y\n' > /pfs/out/d/deep/y; printf 'z\n' > /pfs/out/e/z
    printf 'moved\n' > /pfs/out/m/inner/w
    printf 'plain\n' > /pfs/out/f; printf 'kept\n' > /pfs/out/keep
    for i in $(seq 1 300); do printf '%s\n' "$i" > /pfs/out/n$i; done ;;
master/1)
    printf 'two\n' >> /pfs/out/a          # appended
    printf 'B\n' > /pfs/out/b              # rewritten
    rm /pfs/out/c                          # removed
    rm -r /pfs/out/d                       # a folder removed
    rm -r /pfs/out/e; printf 'now a file\n' > /pfs/out/e   # a folder becomes a file
    rm /pfs/out/f; mkdir /pfs/out/f; printf 'inside\n' > /pfs/out/f/g   # a file becomes a folder
    printf 'new\n' > /pfs/out/h
    mv /pfs/out/m /pfs/out/moved          # a folder moved, its files with it
    stat -c '%i' /pfs/out/keep /pfs/prev/keep > /pfs/out/identity
    (printf 'no\n' > /pfs/prev/keep) 2>/dev/null && echo writable > /pfs/out/prev-state || echo read-only > /pfs/out/prev-state
    for f in /run/pfs-layers/changes/keep /run/pfs-layers/work/x; do (: > $f) 2>/dev/null && echo "$f" >> /pfs/out/prev-state || true; done
    ;;
master/2)
    cd /pfs/prev && find . -type f | sort | while read -r f; do printf '%s %s\n' "$f" "$(cat "$f" | tr '\n' ' ')"; done > /pfs/out/seen
    rm -f /pfs/out/identity ;;
esac
"""


def _files(client: Client, commit: tuple[str, str]) -> dict[str, bytes]:
    return {info.file.path.lstrip("/"): client.get_file_bytes(commit, info.file.path)
            for info in client.walk_files(commit)}


def _run_jobs(client: Client, count: int) -> list[str]:
    client.create_repo("data")
    client.create_pipeline(pipeline("edits", SCRIPT, [("data", MAP)]))
    outputs = []
    for n in range(count):
        with client.commit("data") as c:
            client.put_file(("data", c.id), f"in{n}", b"x\n")
        info = client.flush_commit([("data", f"master/{n}")], timeout=TIMEOUT)[-1]
        outputs.append(info.commit.id)
    return outputs


def test_a_pods_previous_output_is_mounted_not_copied(client: Client) -> None:
    first, second = _run_jobs(client, 2)
    files = _files(client, ("edits", second))
    out_inode, prev_inode = files["identity"].split()
    assert out_inode == prev_inode  # /pfs/out's untouched file is /pfs/prev's: the pod wrote neither
    assert files["prev-state"] == b"read-only\n"
    assert len(_files(client, ("edits", first))) == 309


def test_what_the_code_changed_over_its_previous_output_is_what_the_commit_holds(client: Client) -> None:
    _, second, third = _run_jobs(client, 3)
    _assert_edits_landed(client, second, third)


def _assert_edits_landed(client: Client, second: str, third: str) -> None:
    """The second job's output is exactly what SCRIPT made of the first's; the third job saw it at /pfs/prev."""
    files = _files(client, ("edits", second))
    numbered = {f"n{i}": f"{i}\n".encode() for i in range(1, 301)}
    assert {k: v for k, v in files.items() if k not in ("identity",)} == {
        "a": b"one\ntwo\n", "b": b"B\n", "e": b"now a file\n", "f/g": b"inside\n", "h": b"new\n",
        "keep": b"kept\n", "prev-state": b"read-only\n", "moved/inner/w": b"moved\n", **numbered}
    # The third job's /pfs/prev is the second's output: the laid-out copy moved with it.
    seen = dict(line.split(" ", 1) for line in _files(client, ("edits", third))["seen"].decode().splitlines())
    assert {k.removeprefix("./"): v.strip() for k, v in seen.items()} == {
        k: v.decode().strip().replace("\n", " ") for k, v in files.items()}


@pytest.fixture
def user_pachd() -> Iterator[PachdProcess]:
    with pachd_as_nobody() as server:
        yield server


def test_a_pachd_without_root_mounts_the_previous_output_in_its_warm_pods_own_namespaces(
        user_pachd: PachdProcess) -> None:
    with Client(user_pachd.address) as client:
        _, second, third = _run_jobs(client, 3)
        files = _files(client, ("edits", second))
        out_inode, prev_inode = files["identity"].split()
        assert out_inode == prev_inode  # mounted (a copy is another file), by pachd as nobody
        assert files["prev-state"] == b"read-only\n"  # /pfs/prev, the layers: the pod cannot write them
        _assert_edits_landed(client, second, third)
    assert "copies its previous output in" not in user_pachd.logs()
    assert not _mounts_below(user_pachd.data_dir)  # nothing mounted on the host: all in the pods' namespaces
    pods = user_pachd.data_dir / "pods"  # each ended pod's layers are removed (the overlay's work folder too)
    wait_until(lambda: not [p for p in pods.glob("*/*/layers") if p.parts[-3] != ".warm"], timeout=TIMEOUT,
               what="the ended pods' layers to go")


def test_a_pachd_without_root_nor_warm_pods_starts_pods_that_wait_to_have_the_previous_output_mounted() -> None:
    with pachd_as_nobody("--warm-pods", "0") as server, Client(server.address) as client:
        _, second = _run_jobs(client, 2)
        out_inode, prev_inode = _files(client, ("edits", second))["identity"].split()
        assert out_inode == prev_inode


def test_a_pachd_without_root_starts_its_mount_helper_again_when_it_ended(user_pachd: PachdProcess) -> None:
    script = "stat -c %i /pfs/out/keep /pfs/prev/keep > /pfs/out/identity 2>/dev/null || true; echo kept > /pfs/out/keep"
    with Client(user_pachd.address) as client:
        client.create_repo("data")
        client.create_pipeline(pipeline("ids", script, [("data", MAP)]))

        def run_job(n: int) -> str:
            with client.commit("data") as c:
                client.put_file(("data", c.id), f"in{n}", b"x\n")
            return client.flush_commit([("data", c.id)], timeout=TIMEOUT)[-1].commit.id

        run_job(0)
        run_job(1)  # the first job with a parent: pachd's mount helper has started
        helpers = _podmount_helpers(user_pachd)
        assert helpers
        for pid in helpers:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not set(helpers) & set(_podmount_helpers(user_pachd)), timeout=TIMEOUT,
                   what="the helper to end")
        out_inode, prev_inode = client.get_file_bytes(("ids", run_job(2)), "identity").split()
        assert out_inode == prev_inode  # mounted by a helper started again, not copied


def _podmount_helpers(pachd: PachdProcess) -> list[int]:
    """The mount helpers `pachd` runs (its children running podmount.py --serve)."""
    assert pachd.process is not None
    found = []
    for folder in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((folder / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if parent == pachd.process.pid and b"podmount.py\0--serve" in (folder / "cmdline").read_bytes():
                found.append(int(folder.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _start_hanging_job(client: Client) -> None:
    """SCRIPT's first two jobs, where the second job's first pod marks its /pfs/out (the mark lands
    in its layers on the host) and hangs; its replacement, after a restart, goes on."""
    hang = ('case "$PACH_DATA_COMMIT_ID $PACH_POD_NAME" in "master/1 "*-0-0) '
            ': > /pfs/out/hung; while :; do sleep 1; done ;; esac\n')
    client.create_repo("data")
    client.create_pipeline(pipeline("edits", hang + SCRIPT, [("data", MAP)]))
    for n in range(2):
        with client.commit("data") as c:
            client.put_file(("data", c.id), f"in{n}", b"x\n")


def test_a_pachd_without_root_killed_while_a_pod_has_its_output_mounted_redoes_the_job_and_leaves_nothing(
        user_pachd: PachdProcess) -> None:
    pods = user_pachd.data_dir / "pods"
    with Client(user_pachd.address) as client:
        _start_hanging_job(client)
        wait_until(lambda: [*pods.glob("*/*-0-0/layers/changes/hung")], timeout=TIMEOUT,
                   what="the second job's pod to write over its mounted output")
    user_pachd.kill()
    user_pachd.start()
    with Client(user_pachd.address) as client:
        second = client.flush_commit([("data", "master/1")], timeout=TIMEOUT)[-1]
        assert client.get_file_bytes(("edits", second.commit.id), "a") == b"one\ntwo\n"
        assert "hung" not in _files(client, ("edits", second.commit.id))
        client.delete_all()
    # Every pod's folder goes with its job, the killed pachd's too (its overlay's work folder included).
    wait_until(lambda: not [d for d in pods.iterdir() if not d.name.startswith(".")], timeout=TIMEOUT,
               what="the deleted jobs' pod folders to go")


def test_a_pachd_killed_while_pods_mount_their_output_leaves_no_mount_and_redoes_the_job(
        own_pachd: PachdProcess) -> None:
    with Client(own_pachd.address) as client:
        _start_hanging_job(client)
        wait_until(lambda: any(m.endswith("/pfs/out") for m in _mounts_below(own_pachd.data_dir, own_pachd)),
                   timeout=TIMEOUT, what="the second job's pod to have its output mounted")
    own_pachd.kill()
    # Its mounts (the pods', the warm pods' own /pfs) end with it: none is left on the host, even
    # before a pachd starts again there, and so the data dir could be removed.
    wait_until(lambda: not _mounts_below(own_pachd.data_dir, warm=True), timeout=TIMEOUT,
               what="the killed pachd's mounts to end with it")
    own_pachd.start()
    wait_until(lambda: not any("-0-0/" in m for m in _mounts_below(own_pachd.data_dir, own_pachd)), timeout=TIMEOUT,
               what="no mount of the killed pachd's pod in the restarted one")
    with Client(own_pachd.address) as client:
        second = client.flush_commit([("data", "master/1")], timeout=TIMEOUT)[-1]
        assert client.get_file_bytes(("edits", second.commit.id), "a") == b"one\ntwo\n"
        with client.commit("data") as c:
            client.put_file(("data", c.id), "in2", b"x\n")
        third = client.flush_commit([("data", "master/2")], timeout=TIMEOUT)[-1]
        assert b"./a one two" in client.get_file_bytes(("edits", third.commit.id), "seen")
    wait_until(lambda: not _mounts_below(own_pachd.data_dir, own_pachd), timeout=TIMEOUT,
               what="the pods' mounts to go")


def _mounts_below(folder: Path, pachd: PachdProcess | None = None, *, warm: bool = False) -> list[str]:
    """Mounts below the data dir, as `pachd` sees them (else as the host does), but those of
    idle warm pods (each one's own /pfs, ready for a job) unless `warm`."""
    base, warm_base = f"{folder.resolve()}/", f"{folder.resolve()}/pods/.warm/"
    seen = "self" if pachd is None or pachd.process is None else pachd.process.pid
    points = [line.split()[4] for line in Path(f"/proc/{seen}/mountinfo").read_text().splitlines()]
    return [p for p in points if p.startswith(base) and (warm or not p.startswith(warm_base))]


def test_a_pipeline_made_again_sees_its_own_previous_output(client: Client) -> None:
    # Made again on the same input, the pipeline's jobs and output commits take the same IDs: the
    # laid-out copy is known by what it holds, not by those IDs.
    script = 'cat /pfs/prev/f > /pfs/out/seen 2>/dev/null || true; echo "{v}" > /pfs/out/f'
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_file(("data", c.id), "in0", b"x\n")
    client.create_pipeline(pipeline("again", script.format(v="one"), [("data", MAP)]))
    first = client.flush_commit([("data", "master/0")], timeout=TIMEOUT)[-1].commit.id
    client.delete_pipeline("again")
    client.delete_repo("again")
    client.create_pipeline(pipeline("again", script.format(v="two"), [("data", MAP)]))
    assert client.flush_commit([("data", "master/0")], timeout=TIMEOUT)[-1].commit.id == first  # the same ID...
    with client.commit("data") as c:
        client.put_file(("data", c.id), "in1", b"x\n")
    second = client.flush_commit([("data", "master/1")], timeout=TIMEOUT)[-1].commit.id
    assert client.get_file_bytes(("again", second), "seen") == b"two\n"  # ...but its own files


def test_pods_of_one_job_share_the_previous_output_and_each_adds_its_own(client: Client) -> None:
    script = 'cp /pfs/data/* /pfs/out/; for f in /pfs/data/*; do ls /pfs/prev | tr "\\n" " " > "/pfs/out/seen-$(basename "$f")"; done'
    client.create_repo("data")
    client.create_pipeline(pipeline("both", script, [("data", MAP)], parallelism=2))
    for names in (("a", "b"), ("c", "d", "e", "f")):
        with client.commit("data") as c:
            client.put_files(("data", c.id), [(name, name.encode()) for name in names])
    second = client.flush_commit([("data", "master/1")], timeout=TIMEOUT)[-1].commit.id
    assert len(client.list_job("both")[0].pod_commits) == 2
    files = _files(client, ("both", second))
    assert {k: v for k, v in files.items() if not k.startswith("seen-")} == {n: n.encode() for n in "abcdef"}
    assert {k: v for k, v in files.items() if k in ("seen-c", "seen-d", "seen-e", "seen-f")} == {
        f"seen-{n}": b"a b seen-a seen-b " for n in "cdef"}


def test_a_deleted_pipelines_laid_out_output_is_removed(own_pachd: PachdProcess) -> None:
    folder = own_pachd.data_dir / "pods" / ".outputs" / "gone"
    with Client(own_pachd.address) as client:
        client.create_repo("data")
        with client.commit("data") as c:
            client.put_file(("data", c.id), "in0", b"x\n")
        client.create_pipeline(pipeline("gone", "cp /pfs/data/* /pfs/out/", [("data", MAP)]))
        client.flush_commit([("data", "master/0")], timeout=TIMEOUT)
        wait_until(lambda: (folder / "in0").exists(), timeout=TIMEOUT, what="the output laid out for the next job")
        client.delete_pipeline("gone")
        wait_until(lambda: not folder.exists(), timeout=TIMEOUT, what="the deleted pipeline's copy to go")
