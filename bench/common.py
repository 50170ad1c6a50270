"""What the benchmarks share: a pachd to measure, timing, and the results file."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.pachd import PachdProcess  # noqa: E402

RESULTS = ROOT / "bench" / "results.md"


@contextmanager
def scratch() -> Iterator[Path]:
    """A temporary folder on the same disk as the repository's /tmp."""
    folder = Path(tempfile.mkdtemp(prefix="pach-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def running_pachd(folder: Path, user: tuple[int, int] | None = None) -> Iterator[PachdProcess]:
    """pachd on `folder`, as this process's user or as `user` (uid, gid), whose the folder then becomes."""
    if user is not None:
        os.chown(folder, *user)
    server = PachdProcess(folder / "pachd", user=user).start()
    try:
        yield server
    finally:
        server.stop()


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def shell(command: str) -> None:
    subprocess.run(command, shell=True, check=True)


def drop_caches() -> bool:
    """Empties the page cache (needs root); False where that is not allowed."""
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def pachctl(address: str, *args: str) -> None:
    env = {**os.environ, "ADDRESS": address}
    subprocess.run([sys.executable, "-m", "pachctl.main", "-q", *args], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def process_cpu(pid: int, reaped: bool = False) -> float:
    """CPU seconds (user + system) the running process `pid` has used so far; with `reaped`,
    also those of the children it has waited for (pachd's pods)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15 if reaped else 13]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def extract_tree(revision: str, into: Path) -> Path:
    """The files of git `revision`, extracted into `into`/tree (`into` is made)."""
    into.mkdir(parents=True)
    archive = into / "build.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), revision], check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def extract_revision(revision: str, into: Path) -> Path:
    """The tree of git revision `revision` (to run an earlier build side by side), with a
    job shim of its own for its pods (`bench-job-shim`)."""
    tree = extract_tree(revision, into)
    shim = tree / "bench-job-shim"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH={tree}/client:{tree} exec {sys.executable} -m shim.main "$@"\n')
    shim.chmod(0o755)
    return tree


def extract_build(revision: str, into: Path) -> tuple[Path, Path]:
    """The tree of git `revision` and a Python of its own to run it with, under `into`: this
    checkout's virtualenv as hard links, with the tree's pachd, pachctl, shim and client
    library in place of this checkout's, and its own `job-shim` beside that Python (so its
    pachd's pods and warm pods run the tree's shim). Returns (tree, python).

    `into` must not be under /tmp: local pods get a /tmp of their own."""
    tree = extract_tree(revision, into)
    venv, ours = into / "venv", Path(sys.prefix)
    subprocess.run(["cp", "-al", str(ours), str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for editable in site.glob("__editable__*"):  # this checkout's packages
        editable.unlink()
    (site / "build.pth").write_text(f"{tree}\n{tree / 'client'}\n")
    for script in (venv / "bin").iterdir():  # entry points naming this checkout's Python: the build's own
        if script.is_file() and not script.is_symlink() and script.read_bytes().startswith(f"#!{ours}/".encode()):
            text = script.read_text().replace(f"#!{ours}/", f"#!{venv}/", 1)
            script.unlink()  # a hard link: the original stays as it is
            script.write_text(text)
            script.chmod(0o755)
    return tree, venv / "bin" / "python3"
