"""Laying out a pod's /pfs from its commit mounts, and sending /pfs/out back.

/pfs/<input> holds the pod's shard of each input (only what is new, for
incremental inputs); /pfs/prev the previous output; /pfs/out starts as the
previous output too, so `>>` appends to it and `>` rewrites it. After the
user's code ran, each file of /pfs/out is compared with how it started: new
bytes at the end are appended; anything else replaces the file.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


from pachctl.client import Client
from protos import fuse_pb2, pfs_pb2

logger = logging.getLogger(__name__)

WORKERS = 8
READ = 1024 * 1024


class LayoutError(Exception):
    """A file of the pod's commits cannot be written to the local /pfs (e.g. a name
    longer than the local filesystem allows, which PFS does allow)."""

    def __init__(self, path: str, err: OSError) -> None:
        super().__init__(f"cannot lay out {path} in /pfs: {err.strerror or err}")


@dataclass(frozen=True, slots=True)
class Start:
    """How a file of /pfs/out looked before the user's code ran."""

    size: int
    sha256: str


def mount_name(mount: fuse_pb2.CommitMount) -> str:
    return mount.alias or mount.commit.repo.name


def _filters(mount: fuse_pb2.CommitMount) -> dict[str, object]:
    from_commit = mount.diff_method.from_commit.id if mount.HasField("diff_method") else ""
    shard = mount.shard if mount.HasField("shard") and (mount.shard.file_modulus or mount.shard.block_modulus) else None
    full_file = mount.full_file or (mount.HasField("diff_method") and mount.diff_method.full_file)
    return {"from_commit": from_commit, "full_file": full_file, "shard": shard}


def download(client: Client, mounts: list[fuse_pb2.CommitMount], root: Path) -> dict[str, Start]:
    """Writes every mount under root/<name>; returns how /pfs/out started."""
    jobs = []
    for mount in mounts:
        target = root / mount_name(mount)
        target.mkdir(parents=True, exist_ok=True)
        repo, commit_id = mount.commit.repo.name, mount.commit.id
        filters = _filters(mount)
        for info in client.walk_files(repo, commit_id, "/", **filters):  # type: ignore[arg-type]
            jobs.append((repo, commit_id, info.file.path, target, filters))
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda job: _fetch(client, *job), jobs))
    out = root / "out"
    return {path: _start(out / path) for path in _files(out)} if out.is_dir() else {}


def _fetch(client: Client, repo: str, commit_id: str, path: str, target: Path, filters: dict[str, object]) -> None:
    destination = target / path.lstrip("/")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle = open(destination, "wb")
    except OSError as err:
        raise LayoutError(f"{target.name}{path}", err) from err
    with handle:
        for chunk in client.get_file(repo, commit_id, path, **filters):  # type: ignore[arg-type]
            handle.write(chunk)


def _files(folder: Path) -> Iterator[str]:
    """Paths (relative, '/'-separated) of the regular files below `folder`; links are not followed."""
    for directory, _, names in os.walk(folder):
        for name in names:
            full = Path(directory) / name
            if full.is_file() and not full.is_symlink():
                yield full.relative_to(folder).as_posix()


def _start(path: Path, size: int | None = None) -> Start:
    digest = hashlib.sha256()
    remaining = path.stat().st_size if size is None else size
    with open(path, "rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(READ, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return Start(path.stat().st_size if size is None else size, digest.hexdigest())


def upload(client: Client, out: pfs_pb2.Commit, folder: Path, started: dict[str, Start]) -> int:
    """Sends the changes of `folder` since `started` into the output commit; returns files sent."""
    repo, commit_id = out.repo.name, out.id
    now = set(_files(folder))
    appends: list[tuple[str, int]] = []
    rewrites: list[str] = [path for path in started if path not in now]
    for path in sorted(now):
        before = started.get(path)
        if before is None:
            appends.append((path, 0))
            continue
        size = (folder / path).stat().st_size
        if size >= before.size and _start(folder / path, before.size) == before:
            if size > before.size:
                appends.append((path, before.size))
        else:
            rewrites.append(path)
            appends.append((path, 0))
    for path in rewrites:
        client.delete_file(repo, commit_id, path)
    client.put_files(repo, commit_id, ((path, _reader(folder / path, offset)) for path, offset in appends))
    return len(appends)


def _reader(path: Path, offset: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(READ):
            yield chunk


