"""`pachctl mount`: real FUSE mounts used with ordinary shell tools."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.cli import pachctl
from tests.support.mounts import Mount, is_mounted, sh
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until


@pytest.fixture
def data(client: Client) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [("sales", b"apple 1\norange 2\napple 3\n"), ("dir/a", b"A\n"),
                                        ("dir/sub/b", b"B" * 100 + b"\n")])


def test_tools_read_finished_commits(mounted: Path, data: None) -> None:
    commit = mounted / "data" / "master-0"
    assert sh(f"ls {mounted}").split() == ["data"]
    assert set(sh(f"ls {mounted / 'data'}").split()) == {"master", "master-0"}
    assert sh(f"ls -R {commit}").split() == [f"{commit}:", "dir", "sales", f"{commit}/dir:", "a", "sub",
                                             f"{commit}/dir/sub:", "b"]
    assert sh(f"cat {commit}/sales") == "apple 1\norange 2\napple 3\n"
    assert sh(f"grep apple {commit}/sales") == "apple 1\napple 3\n"
    assert sh(f"tail -c 8 {commit}/sales") == "apple 3\n"
    assert sh(f"stat -c %s {commit}/dir/sub/b").strip() == "101"
    assert sh(f"cat {mounted}/data/master/dir/a") == "A\n"  # a branch stands for its head
    out = mounted.parent / "copied"
    sh(f"cp -r {commit}/dir {out}")
    assert (out / "sub" / "b").read_bytes() == b"B" * 100 + b"\n"


def test_finished_commits_are_read_only(mounted: Path, data: None) -> None:
    commit = mounted / "data" / "master-0"
    for command in (f"echo x > {commit}/new", f"echo x >> {commit}/sales", f"rm {commit}/sales",
                    f"mkdir {commit}/d"):
        result = subprocess.run(command, shell=True, capture_output=True, text=True)
        assert result.returncode != 0 and "Read-only file system" in result.stderr
    assert sh(f"cat {commit}/sales").startswith("apple 1")


def test_writes_to_an_open_commit(mounted: Path, data: None, client: Client, tmp_path: Path) -> None:
    commit = client.start_commit("data")
    folder = mounted / "data" / commit.id.replace("/", "-")
    sh(f"echo hello > {folder}/greeting")
    sh(f"echo again >> {folder}/greeting")
    sh(f"echo orange 4 >> {folder}/sales")
    sh(f"mkdir {folder}/made")
    source = tmp_path / "tree"
    (source / "deep").mkdir(parents=True)
    (source / "deep" / "file").write_text("copied in\n")
    sh(f"cp -r {source} {folder}/made/")
    sh(f"rm {folder}/dir/a")
    sh(f"echo replaced > {folder}/dir/sub/b")
    assert sh(f"cat {folder}/greeting") == "hello\nagain\n"
    client.finish_commit(("data", commit.id))
    get = lambda path: client.get_file_bytes(("data", commit.id), path)  # noqa: E731
    assert get("greeting") == b"hello\nagain\n"
    assert get("sales") == b"apple 1\norange 2\napple 3\norange 4\n"
    assert get("made/tree/deep/file") == b"copied in\n"
    assert get("dir/sub/b") == b"replaced\n"
    assert [f.file.path for f in client.list_file(("data", commit.id), "dir")] == ["/dir/sub"]


def test_new_commits_and_repos_appear(mounted: Path, data: None, client: Client) -> None:
    assert "master-1" not in sh(f"ls {mounted}/data").split()
    with client.commit("data") as c:
        client.put_file(("data", c.id), "later", b"new\n")
    client.create_repo("fresh")
    wait_until(lambda: "master-1" in os.listdir(mounted / "data"), timeout=10, what="the new commit")
    assert "fresh" in os.listdir(mounted)
    assert sh(f"cat {mounted}/data/master-1/later") == "new\n"


def test_sharded_mounts_cover_the_repo_once(pachd: PachdProcess, client: Client, tmp_path: Path) -> None:
    client.create_repo("data")
    with client.commit("data") as c:
        client.put_files(("data", c.id), [(f"top{i}/f", f"{i}\n".encode()) for i in range(12)])
    seen: list[str] = []
    for number in (0, 1, 2):
        mount = Mount(pachd.address, tmp_path / f"shard{number}", "-s", str(number), "-m", "3")
        try:
            seen += sh(f"cd {mount.mountpoint}/data/master-0 && find . -type f").split()
        finally:
            mount.unmount()
    assert sorted(seen) == sorted(f"./top{i}/f" for i in range(12))


def test_unmount_while_a_reader_is_blocked(pachd: PachdProcess, data: None, tmp_path: Path) -> None:
    mount = Mount(pachd.address, tmp_path / "blocked")
    os.kill(pachd.process.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        reader = subprocess.Popen(["cat", str(mount.mountpoint / "data" / "master-0" / "sales")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with pytest.raises(subprocess.TimeoutExpired):
            reader.wait(timeout=0.5)  # blocked: pachd does not answer
        assert pachctl(pachd.address, "unmount", str(mount.mountpoint)).code == 0
        assert not is_mounted(mount.mountpoint)
        assert reader.wait(timeout=10) != 0  # an error, not a hang, while pachd is still stopped
        os.kill(pachd.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        mount.process.wait(timeout=30)  # the mount's own pending call ends once pachd answers
    finally:
        os.kill(pachd.process.pid, signal.SIGCONT)  # type: ignore[union-attr]
        mount.unmount()


def test_unmount_all(pachd: PachdProcess, data: None, tmp_path: Path) -> None:
    mounts = [Mount(pachd.address, tmp_path / f"m{i}") for i in range(2)]
    assert pachctl(pachd.address, "unmount", "-a").code == 0
    for mount in mounts:
        assert not is_mounted(mount.mountpoint)
        mount.process.wait(timeout=30)
    assert shutil.which("fusermount3") is not None
