"""Commit trees: the directory tree of a commit, as content-addressed nodes.

A node is one directory: its entries sorted by name. A file entry holds the
file's block references; a directory entry holds the hash of its child node.
Nodes are immutable objects in the block store ("trees/<sha256>"), so a
finished commit's tree never changes and commits share every unchanged
subtree, as in git. Reading a path costs one node per path component;
finishing a commit rewrites only the directories it touched.

An open commit has no stored tree: its view is its parent's tree with the
commit's pending FileDiffs applied in memory (TreeBuilder), which is also
exactly how finishing builds the tree it then stores.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pachd.errors import FileTypeConflict
from pachd.pfs.records import BlockRef, FileDiff, FileKind, refs_size
from pachd.storage.blocks import BlockStore

EMPTY = ""
"""The root of an empty tree."""

NODE_PREFIX = "trees/"
NODE_FORMAT = 2
"""The version of encode_node's bytes (decode_node reads the first's too)."""
ENTRY_MEMORY = 280
"""Bytes a decoded entry's objects take in memory beyond its share of the node's bytes (measured: 300-330 in all)."""
SEAL_ON_LOOP = 256
"""A sealed directory of more entries than this is encoded off the event loop."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    size: int
    modified: float
    commit: str  # ID of the commit that last changed the file
    origin: str  # ID of the commit where the current content began (created or truncated)
    refs: tuple[BlockRef, ...]


@dataclass(frozen=True, slots=True)
class DirEntry:
    size: int  # bytes in every file below
    modified: float
    commit: str
    node: str  # hash of the directory's node (EMPTY for an empty directory)


Entry = FileEntry | DirEntry
Node = Mapping[str, Entry]
_EMPTY_NODE: Node = {}


def split(path: str) -> list[str]:
    """'/a/b' -> ['a', 'b']; '/' -> []."""
    return [p for p in path.split("/") if p]


def join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


# -- node encoding ----------------------------------------------------------


def encode_node(entries: Node) -> tuple[str, bytes]:
    """Deterministic bytes of a node and their hash.

    JSON: what repeats across a directory's entries (block hashes, commit IDs,
    modification times: a pod's or a put's files share them) is written once,
    in tables ("b", "c", "m") the rows index in order of first use. A file's row
    is [name, size, time, commit, origin, spans], its spans flat (block, lower,
    upper, ...); a directory's is [name, size, time, commit, node].
    """
    blocks: dict[str, int] = {}
    commits: dict[str, int] = {}
    times: dict[float, int] = {}
    rows: list[list[Any]] = []
    for name in sorted(entries):
        e = entries[name]
        if isinstance(e, FileEntry):
            spans: list[int] = []
            for r in e.refs:
                spans += (blocks.setdefault(r.hash, len(blocks)), r.lower, r.upper)
            rows.append([name, e.size, times.setdefault(e.modified, len(times)), commits.setdefault(e.commit, len(commits)),
                         commits.setdefault(e.origin, len(commits)), spans])
        else:
            rows.append([name, e.size, times.setdefault(e.modified, len(times)), commits.setdefault(e.commit, len(commits)),
                         e.node])
    data = json.dumps({"v": NODE_FORMAT, "b": list(blocks), "c": list(commits), "m": list(times), "e": rows},
                      separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest(), data


def decode_node(data: bytes) -> Node:
    raw = json.loads(data)
    if "v" not in raw:
        return _decode_first_format(raw)
    if raw["v"] != NODE_FORMAT:
        raise ValueError(f"tree node format {raw['v']} is not one this pachd reads (it reads 1 and {NODE_FORMAT})")
    blocks: list[str] = raw["b"]
    commits: list[str] = raw["c"]
    times: list[float] = raw["m"]
    entries: dict[str, Entry] = {}
    for row in raw["e"]:
        if len(row) == 6:
            name, size, modified, commit, origin, spans = row
            if len(spans) == 3:  # most files: one block reference
                refs: tuple[BlockRef, ...] = (BlockRef(blocks[spans[0]], spans[1], spans[2]),)
            else:
                refs = tuple([BlockRef(blocks[spans[i]], spans[i + 1], spans[i + 2]) for i in range(0, len(spans), 3)])
            entries[name] = FileEntry(size, times[modified], commits[commit], commits[origin], refs)
        else:
            name, size, modified, commit, node = row
            entries[name] = DirEntry(size, times[modified], commits[commit], node)
    return entries


def _decode_first_format(raw: dict[str, Any]) -> Node:
    """A node stored before NODE_FORMAT 2: rows of [name, kind, size, modified, commit, ...] with
    each value in full (only block hashes in a table); a pachd's older commits still hold them."""
    hashes: list[str] = raw["b"]
    entries: dict[str, Entry] = {}
    for row in raw["e"]:
        name, kind, size, modified, commit = row[:5]
        if kind == "f":
            refs = tuple(BlockRef(hashes[i], lo, hi) for i, lo, hi in row[6])
            entries[name] = FileEntry(size, modified, commit, row[5], refs)
        else:
            entries[name] = DirEntry(size, modified, commit, row[5])
    return entries


class NodeStore:
    """Loads and saves nodes through the block store, with an LRU cache of about
    `cache_bytes` of decoded nodes in memory.

    Nodes are immutable, so cached copies never go stale. A node being loaded is loaded
    once for all who ask meanwhile (a job's pods walk the same input tree side by side).
    """

    def __init__(self, blocks: BlockStore, *, cache_bytes: int = 256 * 1024 * 1024) -> None:
        self._blocks = blocks
        self._cache: OrderedDict[str, tuple[Node, int]] = OrderedDict()
        self._cache_limit = cache_bytes
        self._cached = 0
        self._loading: dict[str, asyncio.Future[Node]] = {}  # node -> its load, while it runs

    async def load(self, node: str) -> Node:
        if node == EMPTY:
            return _EMPTY_NODE
        hit = self._cache.get(node)
        if hit is not None:
            self._cache.move_to_end(node)
            return hit[0]
        loading = self._loading.get(node)
        if loading is None:  # its own task: a caller cancelled does not cancel the others' load
            loading = self._loading[node] = asyncio.ensure_future(self._fetch(node))
            loading.add_done_callback(lambda done: self._loaded(node, done))
        return await asyncio.shield(loading)

    async def _fetch(self, node: str) -> Node:
        data = await self._blocks.get(NODE_PREFIX + node)
        entries = decode_node(data)
        self._remember(node, entries, data)
        return entries

    def _loaded(self, node: str, done: asyncio.Future[Node]) -> None:
        del self._loading[node]
        if not done.cancelled():
            done.exception()  # retrieved: its callers have it, if any still wait

    async def save(self, nodes: Mapping[str, tuple[Node, bytes]], *, remember: bool = True) -> None:
        """Durably stores encoded nodes (before any commit refers to them), and caches
        them unless not to `remember` (a large commit's many nodes would fill the cache).

        The nodes go in one write batch, made durable together once all are written (on
        the local disk: written from one thread, then one pass of syncs and renames, not one
        of each per node; a job's pods' trees have a node per directory each; in a bucket,
        several puts at once). All are durable when this returns.
        """
        batch = self._blocks.batch()
        try:
            # Put even when cached: that renews a stored node, and restores one garbage collection took.
            await batch.put_all({NODE_PREFIX + node: data for node, (_, data) in nodes.items()})
            await batch.commit()
        except BaseException:
            await batch.discard()
            raise
        for node, (entries, data) in nodes.items() if remember else ():
            if node not in self._cache:
                self._remember(node, entries, data)

    def _remember(self, node: str, entries: Node, data: bytes) -> None:
        size = len(data) + ENTRY_MEMORY * len(entries)  # what the decoded node holds, about
        self._cache[node] = (entries, size)
        self._cached += size
        while self._cached > self._cache_limit and len(self._cache) > 1:
            _, (_, old_size) = self._cache.popitem(last=False)
            self._cached -= old_size


# -- reading ----------------------------------------------------------------


class Tree:
    """A read-only view of one commit's tree.

    `extra` holds nodes not (yet) in the store: those of an open commit's
    in-memory view.
    """

    def __init__(self, store: NodeStore, root: str, extra: Mapping[str, Node] | None = None) -> None:
        self.store = store
        self.root = root
        self.extra: Mapping[str, Node] = extra or {}

    async def node(self, node: str) -> Node:
        found = self.extra.get(node)
        return found if found is not None else await self.store.load(node)

    async def root_entry(self) -> DirEntry:
        entries = await self.node(self.root)
        size = sum(e.size for e in entries.values())
        modified = max((e.modified for e in entries.values()), default=0.0)
        return DirEntry(size, modified, "", self.root)

    async def lookup(self, path: str) -> Entry | None:
        """The entry at `path` ('/' is the root directory), or None."""
        names = split(path)
        if not names:
            return await self.root_entry()
        node = self.root  # the root's own entry (a sum over its children) is not needed below it
        for name in names[:-1]:
            entry = (await self.node(node)).get(name)
            if not isinstance(entry, DirEntry):
                return None
            node = entry.node
        return (await self.node(node)).get(names[-1])

    async def children(self, directory: DirEntry) -> Node:
        return await self.node(directory.node)

    async def walk(self, path: str, entry: Entry) -> AsyncIterator[tuple[str, Entry]]:
        """Every entry below `entry` (at `path`), depth first, in name order.

        One generator with a stack of the directories under way: a nested generator per
        directory would hand every entry up through each level above it."""
        if not isinstance(entry, DirEntry):
            return
        stack = [(path.rstrip("/"), iter((await self.node(entry.node)).items()))]
        while stack:
            parent, children = stack[-1]
            for name, child in children:
                child_path = f"{parent}/{name}"
                yield child_path, child
                if isinstance(child, DirEntry):  # its entries come next, then its siblings
                    stack.append((child_path, iter((await self.node(child.node)).items())))
                    break
            else:
                stack.pop()

    async def walk_beside(self, old: Tree, path: str, entry: DirEntry,
                          before: Entry | None) -> AsyncIterator[tuple[str, Entry, Entry | None]]:
        """Every entry below `entry` (at `path`) with what `old` has at its path (`before` is
        `old`'s entry there), depth first, in name order, leaving out each folder whose node is
        the same in `old`: nothing below it changed, so it is not read."""
        async def children_of(node: str, prior: Entry | None) -> tuple[Iterator[tuple[str, Entry]], Node]:
            olds = await old.node(prior.node) if isinstance(prior, DirEntry) else _EMPTY_NODE
            return iter((await self.node(node)).items()), olds

        if isinstance(before, DirEntry) and before.node == entry.node:
            return
        stack = [(path.rstrip("/"), *await children_of(entry.node, before))]
        while stack:
            parent, children, olds = stack[-1]
            for name, child in children:
                prior = olds.get(name)
                if isinstance(child, DirEntry) and isinstance(prior, DirEntry) and prior.node == child.node:
                    continue
                child_path = f"{parent}/{name}"
                yield child_path, child, prior
                if isinstance(child, DirEntry):  # its entries come next, then its siblings
                    stack.append((child_path, *await children_of(child.node, prior)))
                    break
            else:
                stack.pop()


# -- building ---------------------------------------------------------------


def file_conflict(path: str, ancestor: str = "") -> FileTypeConflict:
    """Why a file cannot be written at `path`: `ancestor` is a file ("": `path` is a directory)."""
    if ancestor:
        return FileTypeConflict(f"{ancestor!r} is a file, so {path!r} cannot be created under it")
    return FileTypeConflict(f"{path!r} is a directory; it cannot be written as a file")


@dataclass(slots=True)
class _Dir:
    """A directory being changed: its entries, some replaced by changed _Dirs."""

    entries: dict[str, Entry | _Dir]
    original: DirEntry | None = None  # None for a directory this commit created
    modified: float = 0.0


class TreeBuilder:
    """Applies one commit's FileDiffs to its parent's tree, in memory.

    Diffs must be applied in path order (a directory before what is below it),
    which is the order the KV store returns them in.
    """

    def __init__(self, base: Tree, commit: str, *, sealing: bool = False) -> None:
        """With sealing, a directory is finished (its node made, in `sealed`) as soon as the
        diffs have moved past it, so the builder holds the directories of one path, not the
        whole changed tree; the caller stores and drops `sealed` (take_sealed) as it goes."""
        self.base = base
        self.commit = commit  # ID of the commit the diffs belong to
        self._root: _Dir | None = None
        self._sealing = sealing
        self._open: list[tuple[str, _Dir]] = []  # with sealing: the directories the last diff went through
        self.sealed: dict[str, tuple[Node, bytes]] = {}

    def take_sealed(self) -> dict[str, tuple[Node, bytes]]:
        """The nodes of the directories finished so far (the builder forgets them)."""
        sealed, self.sealed = self.sealed, {}
        return sealed

    async def apply(self, path: str, diff: FileDiff, *, strict: bool = False) -> None:
        """Applies one diff. With strict, a file written below a file, or over a
        directory, raises FileTypeConflict (and changes nothing) instead of replacing it."""
        names = split(path)
        if not names:  # the root itself: only deletion applies
            if diff.delete:
                self._root = _Dir({}, original=None, modified=diff.modified)
                self._open = []
            return
        if strict and diff.kind is FileKind.FILE:
            await self._check_file(names)
        if self._sealing:
            await self._seal_beyond(names[:-1])
        parent = await self._directory(names[:-1], diff.modified, create=diff.kind is not FileKind.NONE)
        if parent is None:
            return
        name = names[-1]
        existing = parent.entries.get(name)
        if diff.kind is FileKind.NONE:
            parent.entries.pop(name, None)
        elif diff.kind is FileKind.DIR:
            if diff.delete or not isinstance(existing, (DirEntry, _Dir)):
                parent.entries[name] = _Dir({}, original=None, modified=diff.modified)
        else:
            parent.entries[name] = file_after(existing if isinstance(existing, FileEntry) else None, diff, self.commit)

    async def apply_files(self, diffs: Sequence[tuple[str, FileDiff]], *, strict: bool = False) -> None:
        """Applies diffs in order, as apply() of each would. A run of files written into one
        directory (a job pod's output: thousands) finds and checks that directory once, for its
        first file, then only looks at each name in it."""
        folder, parent = None, None
        for path, diff in diffs:
            head, _, name = path.rpartition("/")
            if diff.kind is not FileKind.FILE or self._sealing or not name:
                await self.apply(path, diff, strict=strict)
                folder = None
                continue
            if head != folder or parent is None or diff.modified > parent.modified:
                names = split(path)
                if strict:
                    await self._check_file(names)
                parent = await self._directory(names[:-1], diff.modified, create=True)
                assert parent is not None
                folder = head
            existing = parent.entries.get(name)
            if isinstance(existing, FileEntry):
                parent.entries[name] = file_after(existing, diff, self.commit)
            elif existing is None or not strict:
                parent.entries[name] = file_after(None, diff, self.commit)
            else:  # the directory's own entry is a directory: what _check_file says of it
                raise file_conflict("/" + "/".join(split(path)))

    async def _check_file(self, names: list[str]) -> None:
        """Raises FileTypeConflict unless a file can be written at `names` as the tree stands."""
        entries: Mapping[str, Entry | _Dir] = (self._root.entries if self._root is not None
                                               else await self.base.node(self.base.root))
        for depth, name in enumerate(names):
            child = entries.get(name)
            if child is None:
                return
            if depth == len(names) - 1:
                if not isinstance(child, FileEntry):
                    raise file_conflict("/" + "/".join(names))
                return
            if isinstance(child, FileEntry):
                raise file_conflict("/" + "/".join(names), "/" + "/".join(names[:depth + 1]))
            entries = child.entries if isinstance(child, _Dir) else await self.base.node(child.node)

    async def _directory(self, names: list[str], modified: float, *, create: bool) -> _Dir | None:
        """The changed directory at `names`, made changeable on the way down.

        With create, missing directories (or files in the way) become new
        directories; without, a missing one ends the walk with None.
        """
        if self._root is None:
            self._root = _Dir(dict(await self.base.node(self.base.root)), original=None)
        current = self._root
        current.modified = max(current.modified, modified)
        for depth, name in enumerate(names):
            child = current.entries.get(name)
            if isinstance(child, DirEntry):
                sealed = self.sealed.get(child.node)  # sealed and come back to (names sort around '/')
                child = _Dir(dict(sealed[0] if sealed else await self.base.node(child.node)), original=child)
            elif not isinstance(child, _Dir):
                if not create:
                    return None
                child = _Dir({}, original=None)
            child.modified = max(child.modified, modified)
            current.entries[name] = child
            current = child
            if self._sealing and depth >= len(self._open):
                self._open.append((name, child))
        return current

    async def _seal_beyond(self, names: list[str]) -> None:
        """Finishes the open directories that `names` (the next diff's directory) is not in."""
        keep = 0
        while keep < min(len(names), len(self._open)) and self._open[keep][0] == names[keep]:
            keep += 1
        while len(self._open) > keep:
            name, directory = self._open.pop()
            parent = self._open[-1][1] if self._open else self._root
            assert parent is not None
            if len(directory.entries) > SEAL_ON_LOOP:  # encoding and hashing a large node: off the loop
                entry = await asyncio.to_thread(self._finish, directory, self.sealed)
            else:
                entry = self._finish(directory, self.sealed)
            parent.entries[name] = entry

    def build(self) -> tuple[str, dict[str, tuple[Node, bytes]]]:
        """The new root hash, and the new nodes (hash -> (entries, bytes)).

        Nodes the base view held in memory are not repeated; see view().
        """
        if self._root is None:
            return self.base.root, self.take_sealed()
        nodes = self.take_sealed()
        entry = self._finish(self._root, nodes)
        return entry.node, nodes

    def view(self) -> Tree:
        """The tree with the diffs applied, readable before anything is stored."""
        root, nodes = self.build()
        extra = dict(self.base.extra)
        extra.update((node, entries) for node, (entries, _) in nodes.items())
        return Tree(self.base.store, root, extra)

    def _finish(self, directory: _Dir, nodes: dict[str, tuple[Node, bytes]]) -> DirEntry:
        entries: dict[str, Entry] = {}
        for name in sorted(directory.entries):
            child = directory.entries[name]
            entries[name] = self._finish(child, nodes) if isinstance(child, _Dir) else child
        if not entries:
            node = EMPTY
        else:
            node, data = encode_node(entries)
            nodes[node] = (entries, data)
        original = directory.original
        if original is not None and original.node == node:
            return original  # nothing below actually changed
        size = sum(e.size for e in entries.values())
        return DirEntry(size, directory.modified, self.commit, node)


def file_after(existing: FileEntry | None, diff: FileDiff, commit: str) -> FileEntry:
    """The file a FILE diff made by `commit` leaves: appended to `existing` unless the diff replaces it."""
    if existing is not None and not diff.delete:
        refs = existing.refs + diff.refs
        return FileEntry(refs_size(refs), diff.modified, commit, existing.origin, refs)
    return FileEntry(diff.size, diff.modified, commit, commit, diff.refs)


def file_change(old: Entry | None, new: FileEntry) -> tuple[bool, tuple[BlockRef, ...]] | None:
    """How `new` differs from `old`: None if unchanged, else (replaced, refs).

    Appends keep the content's origin and extend its refs, so when `old` is a
    prefix of `new` only the appended refs are the change; anything else
    (created, truncated, rewritten) replaces the whole file.
    """
    if isinstance(old, FileEntry) and old.origin == new.origin and new.refs[: len(old.refs)] == old.refs:
        if len(new.refs) == len(old.refs):
            return None
        return False, new.refs[len(old.refs) :]
    return True, new.refs


async def changes(old: Tree, new: Tree, path: str = "/") -> AsyncIterator[tuple[str, FileDiff]]:
    """The FileDiffs that turn `old` into `new` below `path`, in path order.

    Unchanged subtrees (same node hash) are skipped without being read.
    """
    old_entry, new_entry = await old.lookup(path), await new.lookup(path)
    if not isinstance(new_entry, DirEntry):
        return
    async for item in _dir_changes(old, new, path, old_entry, new_entry):
        yield item


async def _dir_changes(
    old: Tree, new: Tree, path: str, old_entry: Entry | None, new_entry: DirEntry
) -> AsyncIterator[tuple[str, FileDiff]]:
    if isinstance(old_entry, DirEntry) and old_entry.node == new_entry.node:
        return
    old_children = await old.children(old_entry) if isinstance(old_entry, DirEntry) else _EMPTY_NODE
    new_children = await new.children(new_entry)
    for name in sorted(set(old_children) | set(new_children)):
        child_path = join(path, name)
        before, after = old_children.get(name), new_children.get(name)
        if after is None:
            yield child_path, FileDiff(FileKind.NONE, delete=True)
        elif isinstance(after, FileEntry):
            change = file_change(before, after)
            if change is not None:
                replaced, refs = change
                yield child_path, FileDiff(FileKind.FILE, delete=replaced and before is not None, refs=refs,
                                           modified=after.modified)
        else:
            if before is None or isinstance(before, FileEntry):
                yield child_path, FileDiff(FileKind.DIR, delete=before is not None, modified=after.modified)
            async for item in _dir_changes(old, new, child_path, before, after):
                yield item
