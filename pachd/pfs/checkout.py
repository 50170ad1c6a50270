"""A commit's files laid out in a local folder, and brought from one commit to another.

The local executor keeps each pipeline's last output laid out this way (a read-only
lower layer of its pods' /pfs/out and their /pfs/prev: executor/outputs.py), so a
job's pod no longer writes the previous output file by file. Moving the folder from
one commit to the next costs what changed between them (tree.changes skips
unchanged subtrees), not the size of the output.

Each block is read once per batch, whatever the number of files it holds; a batch
holds at most BATCH_BYTES of small pieces, so memory is bounded whatever the commit.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from pachd.pfs import Pfs
from pachd.pfs.blocks import read_refs
from pachd.pfs.records import BlockRef, FileDiff, FileKind
from pachd.pfs.tree import EMPTY, Tree, changes

BATCH_BYTES = 32 * 1024 * 1024  # small pieces held at once
BATCH_FILES = 5000
STREAMED = 4 * 1024 * 1024  # a piece this long is written as it is read, not held
ROOM = 256 * 1024 * 1024  # left free on the folder's disk, beyond what block writes keep for themselves

Owner = tuple[int, int]  # (uid, gid) of what is written, or None: the writer's own


class Checkouts:
    """What the local executor lays out pipelines' outputs with (executor/outputs.py): a
    finished commit's tree, named by its root node, and check_out."""

    def __init__(self, pfs: Pfs) -> None:
        self._pfs = pfs

    async def root(self, repo: str, commit: str) -> str:
        """The root node of the finished commit's tree: what its files are, whatever its ID."""
        record = (await self._pfs.commits.get(repo, commit))[0]
        if record.is_open or record.finishing:
            raise ValueError(f"{repo}@{commit} is not finished")
        return record.root

    async def check_out(self, repo: str, commit: str, folder: Path, since: str | None,
                        owner: Owner | None = None) -> int:
        """check_out, from the tree whose root node is `since` (None: an empty folder)."""
        return await check_out(self._pfs, repo, commit, folder, since, owner)


async def check_out(pfs: Pfs, repo: str, commit: str, folder: Path, since: str | None = None,
                    owner: Owner | None = None) -> int:
    """Makes `folder` hold the files of the finished `commit`, given that it holds those of the
    tree whose root node is `since` (None: it is empty); returns how many paths changed.
    Folders and files are made owned by `owner` (a pod's user, who writes over them through
    an overlay)."""
    new = await pfs.commits.view((await pfs.commits.get(repo, commit))[0])
    old = Tree(pfs.nodes, since or EMPTY)
    folder.mkdir(parents=True, exist_ok=True)
    # A copy is a convenience: it never takes the room put-file needs (a whole commit, or a move by
    # what changed, which is not known before it is walked, into less than ROOM).
    needed = ROOM + (0 if since is not None else (await new.root_entry()).size)
    if shutil.disk_usage(folder).free < needed:
        raise OSError(errno.ENOSPC, f"{needed >> 20} MiB are not free for a copy of {repo}@{commit}", str(folder))
    if owner is not None:
        os.chown(folder, *owner)
    batch: list[tuple[str, FileDiff]] = []
    held = changed = 0
    async for path, diff in changes(old, new):
        batch.append((path, diff))
        held += sum(r.size for r in diff.refs if r.size < STREAMED)
        changed += 1
        if held >= BATCH_BYTES or len(batch) >= BATCH_FILES:
            await _apply(pfs, folder, batch, owner)
            batch, held = [], 0
    if batch:
        await _apply(pfs, folder, batch, owner)
    return changed


async def _apply(pfs: Pfs, folder: Path, batch: Sequence[tuple[str, FileDiff]], owner: Owner | None) -> None:
    """Applies a batch of diffs in order: the small pieces it needs are read first, each
    block's span once; long pieces are streamed into their file when it is reached."""
    spans: dict[str, tuple[int, int]] = {}
    for _, diff in batch:
        for ref in diff.refs:
            if ref.size < STREAMED:
                lower, upper = spans.get(ref.hash, (ref.lower, ref.upper))
                spans[ref.hash] = (min(lower, ref.lower), max(upper, ref.upper))
    held: dict[str, tuple[int, bytes]] = {}
    for block_hash, (lower, upper) in spans.items():
        data = b"".join([chunk async for chunk in read_refs(pfs.blocks, [BlockRef(block_hash, lower, upper)])])
        held[block_hash] = (lower, data)
    run: list[tuple[str, FileDiff]] = []  # diffs written from held bytes alone, in one thread call
    for path, diff in batch:
        if any(ref.size >= STREAMED for ref in diff.refs):
            await asyncio.to_thread(_write_run, folder, run, held, owner)
            run = []
            await _write_streamed(pfs, folder, path, diff, held, owner)
        else:
            run.append((path, diff))
    await asyncio.to_thread(_write_run, folder, run, held, owner)


def _write_run(folder: Path, run: Sequence[tuple[str, FileDiff]], held: dict[str, tuple[int, bytes]],
               owner: Owner | None) -> None:
    for path, diff in run:
        fd = _prepare(folder, path, diff, owner)
        if fd is None:
            continue
        try:
            for ref in diff.refs:
                lower, data = held[ref.hash]
                _write_all(fd, memoryview(data)[ref.lower - lower:ref.upper - lower])
        finally:
            os.close(fd)


async def _write_streamed(pfs: Pfs, folder: Path, path: str, diff: FileDiff, held: dict[str, tuple[int, bytes]],
                          owner: Owner | None) -> None:
    fd = await asyncio.to_thread(_prepare, folder, path, diff, owner)
    assert fd is not None
    try:
        for ref in diff.refs:
            if ref.size < STREAMED:
                lower, data = held[ref.hash]
                await asyncio.to_thread(_write_all, fd, memoryview(data)[ref.lower - lower:ref.upper - lower])
                continue
            async for chunk in read_refs(pfs.blocks, [ref]):
                await asyncio.to_thread(_write_all, fd, memoryview(chunk))
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data):]


def _prepare(folder: Path, path: str, diff: FileDiff, owner: Owner | None) -> int | None:
    """Does what the diff does to the path but write its bytes: returns the file to
    write them to (open at its end), or None for a folder or a deletion."""
    local = f"{folder}{path}"
    if diff.delete or diff.kind is FileKind.NONE:
        _remove(local)
    if diff.kind is FileKind.NONE:
        return None
    if diff.kind is FileKind.DIR:
        os.makedirs(local, exist_ok=True)
        if owner is not None:
            os.chown(local, *owner)
        return None
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    fd = os.open(local, flags, 0o644)
    if owner is not None:
        os.fchown(fd, *owner)
    return fd


def _remove(local: str) -> None:
    try:
        os.unlink(local)
    except IsADirectoryError:
        shutil.rmtree(local)
    except FileNotFoundError:
        pass
