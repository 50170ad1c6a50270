"""Writing into open commits: FileDiffs merged in guarded transactions.

Every write compares the commit record's revision, and finishing a commit
first rewrites that record (finishing=True), so a write racing a finish either
lands before the tree is built or fails with CommitFinished: nothing is lost
silently.

A path's diff key holds what the commit made of it (a file, a directory, a
deletion). Appending to a file the commit already holds writes a key of its
own (keys.appended) guarded only by the path's diff key, so writers appending
to one file never contend with each other: a write retries only when another
changed what the path is (created, deleted or made it a directory), which each
writer does at most once. Reads apply a file's appends in revision order.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from pachd.errors import Aborted, CommitFinished, FileTypeConflict
from pachd.pfs import keys
from pachd.pfs.commits import RETRIES, Commits
from pachd.pfs.records import CommitRecord, FileDiff, FileKind, decode_diff, encode
from pachd.pfs.tree import DirEntry, FileEntry, Tree, file_conflict, split
from pachd.storage.kv import KV, Compare, DeletePrefix, Op, Put

logger = logging.getLogger(__name__)

BATCH = 2500
"""Paths written in one transaction at most (each transaction waits for the disk; its
operations are built on the event loop, at some 20 µs a path)."""
PRELOAD_AFTER = 32
"""Paths one writer checks one by one before it reads all the commit's pending diffs at once."""
PRELOAD_RATIO = 8
"""A commit's pending diffs are read at once only while they number at most this many per path checked."""
PRELOAD_MOST = 20_000
"""...and at most this many (they are decoded on the event loop)."""
KNOWN_MOST = 50_000
"""Paths looked up one by one that a writer remembers at most (memory stays bounded in a long stream)."""
PAGE = 2000
"""Pending diffs read at once by preload_paths (only what concerns its paths is kept)."""


@dataclass(eq=False)
class OpenCommit:
    """An open commit being written, with what this writer knows of its diffs."""

    record: CommitRecord
    revision: int
    base: Tree  # the parent's files
    known: dict[str, tuple[FileDiff | None, int]] = field(default_factory=dict)  # path -> (diff, revision)
    reset: bool = False  # the commit deleted "/", so nothing of the parent shows
    # Once every pending diff is in `known` (complete), a path missing from it has none, and
    # `below` holds every path with pending diffs below it: checks then need no lookups.
    complete: bool = False
    below: set[str] = field(default_factory=set)
    checked: int = 0  # paths checked one by one so far
    next_preload: int = PRELOAD_AFTER
    base_kinds: dict[str, FileKind | None] = field(default_factory=dict)  # directories of the parent, as looked up
    # Paths whose pending diffs, and what is pending below them, are all in `known`/`below`
    # (read at once by preload_paths): their checks need no lookups either.
    spanned: set[str] = field(default_factory=set)


def merge(old: FileDiff | None, new: FileDiff, path: str) -> FileDiff:
    """One diff with the effect of `old` then `new`."""
    if new.delete or old is None:
        return new
    if new.kind is FileKind.FILE:
        if old.kind is FileKind.DIR:
            raise FileTypeConflict(f"{path!r} is a directory in this commit; it cannot also be a file")
        if old.kind is FileKind.NONE:  # deleted earlier in this commit
            return FileDiff(FileKind.FILE, True, new.refs, new.modified)
        return FileDiff(FileKind.FILE, old.delete, old.refs + new.refs, new.modified)
    if old.kind is FileKind.FILE:
        raise FileTypeConflict(f"{path!r} is a file in this commit; it cannot also be a directory")
    return FileDiff(FileKind.DIR, old.delete or old.kind is FileKind.NONE, (), new.modified)


class Writes:
    def __init__(self, *, kv: KV, commits: Commits) -> None:
        self._kv = kv
        self._commits = commits

    async def open(self, repo: str, commit_id: str) -> OpenCommit:
        record, revision = await self._commits.get(repo, commit_id)
        _refuse_finished(record)
        parent = await self._commits.parent(record)
        base = await self._commits.view(parent) if parent is not None else Tree(self._commits.nodes, "")
        reset = await self._kv.get(keys.root_reset(*record.key)) is not None
        return OpenCommit(record, revision, base, reset=reset)

    async def _pending(self, target: OpenCommit, path: str) -> FileDiff | None:
        if path not in target.known:
            if target.complete or path in target.spanned:
                return None
            found = await self._kv.get(keys.diff(*target.record.key, path))
            if len(target.known) >= KNOWN_MOST and not target.spanned:
                target.known.clear()  # only a cache here (a write guarded by a forgotten revision looks it up again)
            target.known[path] = (decode_diff(found.value), found.mod_revision) if found else (None, 0)
        return target.known[path][0]

    async def kind(self, target: OpenCommit, path: str) -> FileKind | None:
        """What `path` is in the open commit right now (None: nothing)."""
        reset = target.reset
        for ancestor in _ancestors(path):
            diff = await self._pending(target, ancestor)
            reset = reset or (diff is not None and diff.delete)
        diff = await self._pending(target, path)
        if target.complete or path in target.spanned:
            if path in target.below:
                return FileKind.DIR
        elif (await self._kv.range(keys.diffs(*target.record.key, path), limit=1)).kvs:
            return FileKind.DIR
        if diff is not None:
            return None if diff.kind is FileKind.NONE else diff.kind
        if reset:
            return None
        entry = await target.base.lookup(path)
        if entry is None:
            return None
        return FileKind.DIR if isinstance(entry, DirEntry) else FileKind.FILE

    async def check(self, target: OpenCommit, path: str, kind: FileKind) -> None:
        """Raises FileTypeConflict unless `path` can become a `kind` here."""
        await self._maybe_preload(target)
        reset = target.reset
        for ancestor in _ancestors(path):
            diff = await self._pending(target, ancestor)
            if diff is not None:
                if diff.kind is FileKind.FILE:
                    raise file_conflict(path, ancestor)
                reset = reset or diff.delete
            elif not reset and await self._base_kind(target, ancestor) is FileKind.FILE:
                raise file_conflict(path, ancestor)
        if kind is FileKind.FILE and await self.kind(target, path) is FileKind.DIR:
            raise file_conflict(path)
        if kind is FileKind.DIR and await self.kind(target, path) is FileKind.FILE:
            raise FileTypeConflict(f"{path!r} is a file; it cannot be made a directory")

    async def _base_kind(self, target: OpenCommit, directory: str) -> FileKind | None:
        """What a parent directory of checked paths is in the parent commit (remembered: many share one)."""
        if directory not in target.base_kinds:
            if len(target.base_kinds) >= KNOWN_MOST:
                target.base_kinds.clear()
            entry = await target.base.lookup(directory)
            target.base_kinds[directory] = (None if entry is None else FileKind.DIR if isinstance(entry, DirEntry)
                                            else FileKind.FILE)
        return target.base_kinds[directory]

    async def _maybe_preload(self, target: OpenCommit) -> None:
        """After some paths checked one by one, reads all the commit's pending diffs in one range, if
        they are few against the paths checked so far (so a writer of many files into a commit of
        few pending diffs looks nothing up per path, and a writer of few files reads little)."""
        target.checked += 1
        if target.complete or target.spanned or target.checked < target.next_preload:
            return
        target.next_preload *= 2
        limit = min(PRELOAD_RATIO * target.checked, PRELOAD_MOST)
        found = await self._kv.range(keys.diffs(*target.record.key), limit=limit + 1)
        if len(found.kvs) > limit:
            return
        known: dict[str, tuple[FileDiff | None, int]] = {}
        below: set[str] = set()
        for kv in found.kvs:
            path = keys.diff_path(kv.key)
            if not keys.append_write(kv.key):
                known[path] = (decode_diff(kv.value), kv.mod_revision)
            below.update(_ancestors(path))
        target.known, target.below, target.complete = known, below, True

    async def preload_paths(self, target: OpenCommit, paths: Sequence[str]) -> None:
        """Reads the commit's pending diffs from the first of `paths` to below the last, if they
        are few against the paths (a writer of many new files, sorted, into a commit of many
        pending diffs then looks nothing up per path); else nothing changes.

        The span is read PAGE keys at a time and only what concerns `paths` is kept (their own
        diffs, their directories', and which of them have diffs below), so memory follows the
        paths, not the commit's pending diffs."""
        if not paths or target.complete:
            return
        prefix = keys.diffs(*target.record.key)
        start: str | None = keys.diff(*target.record.key, min(paths))
        end = max(_key_end(keys.diff(*target.record.key, p)) for p in paths)
        wanted = set(paths)
        directories = {a for p in wanted for a in _ancestors(p)}
        limit = PRELOAD_RATIO * len(paths)
        known: dict[str, tuple[FileDiff | None, int]] = {}
        below: set[str] = set()
        read = 0
        while start is not None:
            page = (await self._kv.range(prefix, start=start, limit=PAGE)).kvs
            start = page[-1].key + "\x00" if len(page) == PAGE else None  # the smallest key after it
            for kv in page:
                if kv.key >= end:
                    start = None
                    break
                read += 1
                if read > limit:
                    return  # more pending diffs there than are worth reading at once
                path = keys.diff_path(kv.key)
                if not keys.append_write(kv.key) and (path in wanted or path in directories):
                    known[path] = (decode_diff(kv.value), kv.mod_revision)
                below.update(a for a in _ancestors(path) if a in wanted)
        target.known.update(known)
        target.below.update(below)
        target.spanned = wanted

    async def apply(self, target: OpenCommit, changes: Sequence[tuple[str, FileDiff]]) -> None:
        """Merges the changes into the commit's pending diffs, in guarded batches."""
        combined: dict[str, FileDiff] = {}
        for path, diff in changes:
            previous = combined.get(path)
            combined[path] = merge(previous, diff, path) if previous else diff
        paths = list(combined)
        # Bounded batches: each is built on the event loop, so it must stay short.
        per_txn = max(1, min(BATCH, (self._kv.max_txn_ops - 1) // 2))
        for start in range(0, len(paths), per_txn):
            await self._apply_batch(target, {p: combined[p] for p in paths[start : start + per_txn]})

    async def _apply_batch(self, target: OpenCommit, batch: dict[str, FileDiff]) -> None:
        # No retry limit: a failed attempt means another transaction changed the
        # commit record or what one of these paths is, and appends (what
        # concurrent writers mostly do) change neither, so this cannot starve.
        key = target.record.key
        write = uuid.uuid4().hex
        while True:
            guards = [Compare(keys.commit(*key), target.revision)]
            ops: list[Op] = []
            merged: dict[str, FileDiff] = {}
            for path, diff in batch.items():
                old, revision = target.known.get(path, (None, 0))
                guards.append(Compare(keys.diff(*key, path), revision))
                if _appends(old, diff):
                    ops.append(Put(keys.appended(*key, path, write), encode(diff)))
                elif not _same_directory(old, diff):
                    merged[path] = merge(old, diff, path)
                    ops.append(Put(keys.diff(*key, path), encode(merged[path])))
            result = await self._kv.txn(guards, ops)
            target.spanned = set()  # what is pending changed (by this write, or another's)
            if result.succeeded:
                # What was written is forgotten rather than kept (memory per file of a large put);
                # a later write through this OpenCommit looks those paths up again.
                for path in merged:
                    target.known.pop(path, None)
                target.complete = False
                return
            target.complete = False  # another writer changed the commit: look paths up again
            logger.debug("writing to %s/%s: another write changed the commit or a path first; again",
                         key[0], target.record.id)
            await self._refresh(target, batch)

    async def _refresh(self, target: OpenCommit, paths: dict[str, FileDiff]) -> None:
        record, target.revision = await self._commits.get(target.record.repo, target.record.id)
        _refuse_finished(record)
        for path in paths:
            target.known.pop(path, None)
            await self._pending(target, path)

    async def delete(self, target: OpenCommit, path: str, now: float) -> None:
        """Deletes the path (a directory with everything below it) in the commit."""
        key = target.record.key
        tombstone = FileDiff(FileKind.NONE, delete=True, modified=now)
        for _ in range(RETRIES):
            if path == "/":
                ops: list[Op] = [DeletePrefix(keys.diffs(*key)), Put(keys.root_reset(*key), encode(tombstone))]
            else:
                ops = [DeletePrefix(keys.diffs(*key, path)), DeletePrefix(keys.appends(*key, path)),
                       Put(keys.diff(*key, path), encode(tombstone))]
            result = await self._kv.txn([Compare(keys.commit(*key), target.revision)], ops)
            if result.succeeded:
                target.known.clear()
                target.complete = False
                target.spanned = set()
                target.below.clear()
                target.reset = target.reset or path == "/"
                return
            record, target.revision = await self._commits.get(target.record.repo, target.record.id)
            _refuse_finished(record)
        raise Aborted(f"deleting from {key[0]}/{target.record.id} lost too many races; try again")


def _appends(old: FileDiff | None, new: FileDiff) -> bool:
    """Whether `new` only appends to a file the commit already holds."""
    return old is not None and old.kind is FileKind.FILE and new.kind is FileKind.FILE and not new.delete


def _same_directory(old: FileDiff | None, new: FileDiff) -> bool:
    """Whether `new` makes a directory the commit already holds: nothing to write."""
    return old is not None and old.kind is FileKind.DIR and new.kind is FileKind.DIR and not new.delete


def _key_end(key: str) -> str:
    """The smallest key above every key that starts with `key`."""
    return key[:-1] + chr(ord(key[-1]) + 1)


def _ancestors(path: str) -> list[str]:
    names = split(path)
    return ["/" + "/".join(names[:i]) for i in range(1, len(names))]


def _refuse_finished(record: CommitRecord) -> None:
    if not record.is_open or record.finishing:
        raise CommitFinished(
            f"commit {record.repo}/{record.id} is finished; start a new commit to write (start-commit {record.repo})"
        )
