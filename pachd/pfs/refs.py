"""Writing many files into an open commit from blocks already stored.

A job pod sends its output's bytes as one block stream (BlockAPI PutBlock)
and then names each file's slice of those blocks in one call, instead of one
PutFile round per file. Every block named must exist and hold the range named;
paths are checked as put-file checks them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pachd.errors import InvalidArgument
from pachd.pfs import blocks
from pachd.pfs.commits import Commits
from pachd.pfs.records import BlockRef, FileDiff, FileKind
from pachd.pfs.writes import Writes
from pachd.storage.blocks import BlockStore


@dataclass(frozen=True, slots=True)
class FileRefs:
    """A file's new bytes: `refs` appended, after dropping what it held if `replace`."""

    path: str
    refs: tuple[BlockRef, ...]
    replace: bool = False


class RefWrites:
    def __init__(self, *, writes: Writes, commits: Commits, blocks: BlockStore,
                 now: Callable[[], float] = time.time) -> None:
        self._writes = writes
        self._commits = commits
        self._blocks = blocks
        self._now = now

    async def put(self, repo: str, commit_id: str, files: Sequence[FileRefs], deletes: Sequence[str] = (), *,
                  finish: bool = False) -> int:
        """Deletes `deletes`, then writes `files`; returns how many files were written.

        With finish, these are the commit's last writes and the commit is
        finished with them, built straight into its tree (a job pod's whole
        output: nothing is stored per file but the tree; see Commits.finish).
        """
        await self._check_blocks(files)
        now = self._now()
        if finish:
            tombstone = FileDiff(FileKind.NONE, delete=True, modified=now)
            await self._commits.finish(repo, commit_id, last=[*((path, tombstone) for path in deletes), *(
                (f.path, FileDiff(FileKind.FILE, delete=f.replace, refs=f.refs, modified=now)) for f in files)])
            return len(files)
        target = await self._writes.open(repo, commit_id)
        for path in deletes:
            await self._writes.delete(target, path, now)
        await self._writes.preload_paths(target, [f.path for f in files])
        for file in files:
            await self._writes.check(target, file.path, FileKind.FILE)
        await self._writes.apply(target, [
            (f.path, FileDiff(FileKind.FILE, delete=f.replace, refs=f.refs, modified=now)) for f in files])
        return len(files)

    async def _check_blocks(self, files: Sequence[FileRefs]) -> None:
        needed: dict[str, int] = {}
        for file in files:
            for ref in file.refs:
                if ref.lower > ref.upper:
                    raise InvalidArgument(f"{file.path}: block range {ref.lower}-{ref.upper} is reversed")
                needed[ref.hash] = max(needed.get(ref.hash, 0), ref.upper)
        for block_hash, end in needed.items():
            size = (await blocks.stat(self._blocks, block_hash)).size
            if end > size:
                raise InvalidArgument(f"block {block_hash[:12]}... holds {size} bytes, not {end}")
