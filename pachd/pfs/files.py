"""Files: put (streamed, many files per stream), get, inspect, list, delete.

A file in a commit is its parent's content plus what the commit appended;
writes land as FileDiffs of the open commit (see records.py), reads go
through the commit's tree view. Reads may be narrowed to a shard and to what
changed since another commit (a DiffSpec).
"""

from __future__ import annotations

import builtins
import enum
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pachd.errors import FileNotFound, InvalidArgument, PathIsDirectory
from pachd.pfs.blocks import BlockWriter, FileAssembler, read_refs
from pachd.pfs.chunking import Delimiter, Slice
from pachd.pfs.commits import Commits
from pachd.pfs.records import BlockRef, CommitRecord, FileDiff, FileKind
from pachd.pfs.spill import HOLD, Row, Spill
from pachd.pfs.sharding import EVERYTHING, Shard, block_in_shard, file_in_shard, refs_in_shard, selector
from pachd.pfs.tree import DirEntry, Entry, FileEntry, Tree, file_change
from pachd.pfs.uploads import Uploads
from pachd.pfs.urls import Fetcher
from pachd.pfs.writes import OpenCommit, Writes
from pachd.storage.blocks import BlockStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileHeader:
    """Starts a file in a put-file stream; the bytes that follow are its data."""

    repo: str
    commit: str
    path: str
    kind: FileKind = FileKind.FILE  # FILE, or DIR to make a directory
    delimiter: Delimiter = Delimiter.LINE
    url: str = ""  # fetch the data from here instead


PutItem = FileHeader | bytes | Slice


@dataclass(frozen=True, slots=True)
class DiffSpec:
    """Narrows reads to what changed since `from_commit` (in the same repo)."""

    from_commit: str
    full_file: bool = False  # whole files, but only those that changed


class ListMode(enum.Enum):
    NORMAL = 0
    FAST = 1  # sizes only where they are free
    RECURSE = 2


class FileInfo(NamedTuple):
    """A listed file or directory. A named tuple, not a dataclass: a listing makes one per
    entry, and building a frozen dataclass costs several times as much (4x, measured)."""

    path: str
    kind: FileKind
    size: int
    modified: float
    commit_modified: str
    children: tuple[str, ...] = ()


class Files:
    def __init__(
        self, *, blocks: BlockStore, commits: Commits, writes: Writes, uploads: Uploads,
        now: Callable[[], float] = time.time, fetcher: Fetcher | None = None,
    ) -> None:
        self._blocks = blocks
        self._fetcher = fetcher or Fetcher()
        self._commits = commits
        self._writes = writes
        self._uploads = uploads
        self._now = now

    # -- writing ------------------------------------------------------------

    async def put(self, items: AsyncIterator[PutItem]) -> int:
        """Writes every file of the stream; returns how many.

        Nothing becomes visible until the stream has ended and all its blocks
        are durable, so an interrupted stream writes nothing.
        """
        async with self._uploads.running():  # garbage collection spares the blocks until they are referenced
            return await self._put(items)

    async def _put(self, items: AsyncIterator[PutItem]) -> int:
        spill = Spill(self._blocks.temporary)
        try:
            targets = await self._receive(items, spill)
            count = 0
            now = self._now()
            async for rows in spill.rows():  # the blocks are durable: write the diffs, a bounded batch at a time
                changes: dict[int, list[tuple[str, FileDiff]]] = {}
                for number, path, kind, refs in rows:
                    changes.setdefault(number, []).append((path, FileDiff(kind, refs=refs, modified=now)))
                for number, diffs in changes.items():
                    await self._writes.apply(targets[number], diffs)
                count += len(rows)
            return count
        finally:
            await spill.close()

    async def _receive(self, items: AsyncIterator[PutItem], spill: Spill) -> list[OpenCommit]:
        """Stores the stream's blocks (durably) and checks its files; what each file became goes
        into `spill`. Returns the commits written to (their numbers in the rows)."""
        headers: list[tuple[FileHeader, int]] = []  # the files since the last settle, with their target's number
        targets: dict[tuple[str, str], int] = {}
        opened: list[OpenCommit] = []
        async with BlockWriter(self._blocks) as writer:
            assembler = FileAssembler(writer)
            current: FileHeader | None = None
            async for item in items:
                if isinstance(item, FileHeader):
                    if current is not None:
                        await assembler.end()
                        if len(headers) >= HOLD:  # what the files became leaves memory for the spill file
                            spill.add(_rows(headers, await assembler.settle()))
                            headers.clear()
                            await spill.spill()
                    number = targets.get((item.repo, item.commit))
                    if number is None:
                        opened.append(await self._writes.open(item.repo, item.commit))
                        number = targets[item.repo, item.commit] = len(opened) - 1
                    await self._writes.check(opened[number], item.path, item.kind)
                    headers.append((item, number))
                    current = item
                    assembler.start(item.delimiter)
                    if item.url:
                        async for chunk in self._fetcher.fetch(item.url):
                            await assembler.feed(chunk)
                elif current is None:
                    raise InvalidArgument("put-file data came before any file was named; set `file` first")
                elif current.kind is FileKind.DIR or current.url:
                    if item:
                        raise InvalidArgument(f"{current.path}: a directory or URL put carries no data")
                else:
                    await assembler.feed(item)
            if current is not None:
                await assembler.end()
            spill.add(_rows(headers, await assembler.results()))
        return opened

    async def delete(self, repo: str, commit_id: str, path: str) -> None:
        target = await self._writes.open(repo, commit_id)
        if path != "/" and await self._writes.kind(target, path) is None:
            raise FileNotFound(f"file {path.lstrip('/')} not found in repo {repo} at commit {target.record.id}")
        await self._writes.delete(target, path, self._now())

    # -- reading ------------------------------------------------------------

    async def get(
        self, repo: str, commit_id: str, path: str, *, offset: int = 0, size: int = 0,
        shard: Shard = EVERYTHING, diff: DiffSpec | None = None,
    ) -> AsyncIterator[bytes]:
        """The file's bytes (narrowed by shard and diff) from offset, at most size (0: all)."""
        refs = await self.refs_of(repo, commit_id, path, shard=shard, diff=diff)
        async for chunk in read_refs(self._blocks, refs, offset, size):
            yield chunk

    async def refs_of(
        self, repo: str, commit_id: str, path: str, *, shard: Shard = EVERYTHING, diff: DiffSpec | None = None,
    ) -> tuple[BlockRef, ...]:
        """The block ranges holding the file's bytes (narrowed by shard and diff), in order: what get() reads."""
        record, view, old = await self._views(repo, commit_id, diff, _folder_of(path, diff))
        entry = await view.lookup(path)
        if isinstance(entry, DirEntry):
            raise PathIsDirectory(f"{path!r} in {repo}/{record.id} is a directory; use list-file")
        old = await _whole_if_changed(view, old, diff, _parent(path))
        refs = await self._refs(path, entry, shard, old, diff) if entry is not None else None
        if refs is None:
            raise _not_found(path, repo, record)
        return refs

    async def inspect(
        self, repo: str, commit_id: str, path: str, *, shard: Shard = EVERYTHING, diff: DiffSpec | None = None
    ) -> FileInfo:
        record, view, old = await self._views(repo, commit_id, diff, _folder_of(path, diff))
        entry = await view.lookup(path) if path != "/" else None  # as in v1.2.3, the root has no entry to inspect
        old = await _whole_if_changed(view, old, diff, path if isinstance(entry, DirEntry) else _parent(path))
        info = await self._info(view, path, entry, shard, old, diff, ListMode.RECURSE) if entry else None
        if info is None:
            raise _not_found(path, repo, record)
        if isinstance(entry, DirEntry):
            children = [i.path for i in await self._children(view, path, entry, shard, old, diff, ListMode.FAST)]
            info = FileInfo(info.path, info.kind, info.size, info.modified, info.commit_modified, tuple(children))
        return info

    async def list(
        self, repo: str, commit_id: str, path: str, *, shard: Shard = EVERYTHING,
        diff: DiffSpec | None = None, mode: ListMode = ListMode.NORMAL,
    ) -> builtins.list[FileInfo]:
        """The directory's children (or the file itself), narrowed by shard and diff.

        With full_file, a directory in which anything changed since the diff's
        commit lists all its children, whole (as v1.2.3 did). FAST listings
        carry no sizes (0), as v1.2.3's did not."""
        record, view, old = await self._views(repo, commit_id, diff, _folder_of(path, diff))
        entry = await view.lookup(path)
        old = await _whole_if_changed(view, old, diff, path if isinstance(entry, DirEntry) else _parent(path))
        if isinstance(entry, FileEntry):
            info = await self._info(view, path, entry, shard, old, diff, mode)
            if info is None:
                raise _not_found(path, repo, record)
            return [_sizeless(info) if mode is ListMode.FAST else info]
        if entry is None or (path != "/" and not file_in_shard(shard, path)):
            raise _not_found(path, repo, record)
        infos = await self._children(view, path, entry, shard, old, diff, mode)
        return [_sizeless(i) for i in infos] if mode is ListMode.FAST else infos

    async def walk(
        self, repo: str, commit_id: str, *, shard: Shard = EVERYTHING, diff: DiffSpec | None = None
    ) -> AsyncGenerator[tuple[str, tuple[BlockRef, ...]], None]:
        """Every file of the commit with the references its shard and diff select."""
        _, view, old = await self._views(repo, commit_id, diff)
        if old is not None:  # only the folders that differ, each file beside its old entry: what changed costs
            async for path, entry, before in view.walk_beside(old, "/", await view.root_entry(), await old.root_entry()):
                if isinstance(entry, FileEntry):
                    refs = _selected(path, entry, shard, before, diff)
                    if refs is not None:
                        yield path, refs
            return
        select = selector(shard)
        async for path, entry in view.walk("/", await view.root_entry()):
            if isinstance(entry, FileEntry):
                refs = select(path, entry.refs)  # nothing to await: no coroutine per file (a pod's shard walks every file)
                if refs is not None:
                    yield path, refs

    async def _views(self, repo: str, commit_id: str, diff: DiffSpec | None,
                     under: str = "/") -> tuple[CommitRecord, Tree, Tree | None]:
        """The commit's view and, for a diff, the view of the commit it starts from;
        both good for `under` and what lies below it."""
        record, _ = await self._commits.get(repo, commit_id)
        view = await self._commits.view(record, under)
        old = None
        if diff is not None and diff.from_commit:
            old = await self._commits.view((await self._commits.get(repo, diff.from_commit))[0], under)
        return record, view, old

    async def _children(
        self, view: Tree, path: str, entry: DirEntry, shard: Shard, old: Tree | None,
        diff: DiffSpec | None, mode: ListMode,
    ) -> builtins.list[FileInfo]:
        children = await view.children(entry)
        if old is None and not shard.filters_files and not shard.filters_blocks:  # the common case, with no work per entry but the entry
            base = path.rstrip("/")
            return [FileInfo(f"{base}/{name}", FileKind.FILE if isinstance(child, FileEntry) else FileKind.DIR,
                             child.size, child.modified, child.commit) for name, child in children.items()]
        infos = []
        for name, child in children.items():
            info = await self._info(view, _join(path, name), child, shard, old, diff, mode)
            if info is not None:
                infos.append(info)
        return infos

    async def _info(
        self, view: Tree, path: str, entry: Entry, shard: Shard, old: Tree | None,
        diff: DiffSpec | None, mode: ListMode,
    ) -> FileInfo | None:
        """The entry as FileInfo, or None if the shard or diff leaves nothing of it."""
        if isinstance(entry, FileEntry):
            refs = await self._refs(path, entry, shard, old, diff)
            if refs is None:
                return None
            return FileInfo(path, FileKind.FILE, sum(r.size for r in refs), entry.modified, entry.commit)
        if path != "/" and not file_in_shard(shard, path):
            return None
        if old is not None:
            before = await old.lookup(path)
            if isinstance(before, DirEntry) and before.node == entry.node:
                return None
        size = entry.size
        if (old is not None or shard.filters_blocks) and mode is not ListMode.FAST:
            size = 0
            async for sub_path, sub in view.walk(path, entry):
                if isinstance(sub, FileEntry):
                    refs = await self._refs(sub_path, sub, shard, old, diff)
                    size += sum(r.size for r in refs or ())
        return FileInfo(path, FileKind.DIR, size, entry.modified, entry.commit)

    async def _refs(
        self, path: str, entry: FileEntry, shard: Shard, old: Tree | None, diff: DiffSpec | None
    ) -> tuple[BlockRef, ...] | None:
        """The references of the file the shard and diff select; None for none."""
        if old is None:
            return _selected(path, entry, shard, None, None)
        return _selected(path, entry, shard, await old.lookup(path), diff)


def _selected(path: str, entry: FileEntry, shard: Shard, before: Entry | None,
              diff: DiffSpec | None) -> tuple[BlockRef, ...] | None:
    """The references of the file the shard and diff select, given what the diff's commit had at
    its path (`before`; no diff: None and None); None for none."""
    if not file_in_shard(shard, path):
        return None
    refs = entry.refs
    if diff is not None:
        change = file_change(before, entry)
        if change is None:
            return None
        if not diff.full_file:
            refs = change[1]
    return _blocks_in_shard(path, entry, refs, shard)


def _blocks_in_shard(path: str, entry: FileEntry, refs: tuple[BlockRef, ...],
                     shard: Shard) -> tuple[BlockRef, ...] | None:
    """Those of the file's `refs` in the shard's blocks; None if none is (an empty file is in one block shard)."""
    if not shard.filters_blocks:
        return refs
    if not entry.refs:
        return () if block_in_shard(shard, path, "") else None
    return refs_in_shard(shard, path, refs) or None


def _rows(headers: builtins.list[tuple[FileHeader, int]], refs: builtins.list[tuple[BlockRef, ...]]) -> Iterator[Row]:
    for (header, number), file_refs in zip(headers, refs, strict=True):
        yield number, header.path, header.kind, file_refs if header.kind is FileKind.FILE else ()


async def _whole_if_changed(view: Tree, old: Tree | None, diff: DiffSpec | None, folder: str) -> Tree | None:
    """The view a full_file diff compares with: none (everything, whole) if anything in
    `folder` changed since the diff's commit, as v1.2.3 listed such a folder; so its
    listing, and the files it lists, read the same."""
    if old is None or diff is None or not diff.full_file:
        return old
    before, now = await old.lookup(folder), await view.lookup(folder)
    if isinstance(before, DirEntry) and isinstance(now, DirEntry) and before.node == now.node:
        return old
    return None


def _folder_of(path: str, diff: DiffSpec | None) -> str:
    """What a read of `path` must see: its folder too for a full_file diff (see _whole_if_changed)."""
    return _parent(path) if diff is not None and diff.full_file else path


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def _sizeless(info: FileInfo) -> FileInfo:
    return info._replace(size=0)


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def _not_found(path: str, repo: str, record: CommitRecord) -> FileNotFound:
    return FileNotFound(f"file {path.lstrip('/')} not found in repo {repo} at commit {record.id}",
                        hint="or it is not in the requested shard or diff; see list-file")
