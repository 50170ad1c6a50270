"""Merging trees that split from one base: a squash of a job's pods' commits, tree by tree.

Each source's tree is its base plus what it changed, and its changed entries
already name the commit it is squashed into (CommitRecord.squash_into). So
the squash's result is read off the trees: a directory only one source
changed is that source's directory as it stands (nothing below it is read),
and only directories several sources changed are merged, entry by entry.
A path several sources changed is combined as the diff-by-diff squash
combines it (squash.py); where that would need more than a file's diffs
(one source made a directory what another made a file), Unmergeable says
the squash must go diff by diff.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pachd.pfs.records import FileDiff, FileKind
from pachd.pfs.tree import EMPTY, DirEntry, Entry, FileEntry, Node, Tree, encode_node, file_after, file_change

Nodes = dict[str, tuple[Node, bytes]]


class Unmergeable(Exception):
    """Sources changed one path in ways only the diff-by-diff squash combines."""


def combine(first: FileDiff, second: FileDiff) -> FileDiff:
    """The changes two sibling commits made to one path, both kept.

    Unlike a later write within one commit, a truncation in `second` does not
    drop what `first` wrote: both commits' data stays, as in v1.2. A deletion
    in `second` still deletes, and of a file and a directory the later wins.
    """
    if second.kind is FileKind.NONE:
        return second
    if first.kind is FileKind.NONE:
        return dataclasses.replace(second, delete=True)
    if first.kind is not second.kind:
        return second
    return FileDiff(second.kind, first.delete or second.delete, first.refs + second.refs,
                    max(first.modified, second.modified))


@dataclasses.dataclass(frozen=True, slots=True)
class Merged:
    """The merged tree: its root and the nodes it made (as TreeBuilder.build gives them)."""

    base: Tree
    root: str
    nodes: Nodes

    def build(self) -> tuple[str, Nodes]:
        return self.root, self.nodes

    def view(self) -> Tree:
        extra = dict(self.base.extra)
        extra.update((node, entries) for node, (entries, _) in self.nodes.items())
        return Tree(self.base.store, self.root, extra)


async def merge(base: Tree, sources: Sequence[Tree], commit: str) -> Merged:
    """The tree of `base` with every source's changes (each source split from `base`), made by `commit`."""
    nodes: Nodes = {}
    root, _ = await _merge_dir(base, base.root, [(s, s.root) for s in sources], commit, nodes)
    return Merged(base, root, nodes)


async def _merge_dir(base: Tree, base_node: str, sources: list[tuple[Tree, str]], commit: str,
                     nodes: Nodes) -> tuple[str, int]:
    """The merged node of one directory (EMPTY: none in the base) and the size of what it holds."""
    changed = [(tree, node) for tree, node in sources if node != base_node]
    if len(changed) <= 1:
        tree, node = changed[0] if changed else (base, base_node)
        return node, sum(e.size for e in (await tree.node(node)).values())
    old = await base.node(base_node)
    touched: dict[str, list[tuple[Tree, Entry | None]]] = {}
    for tree, node in changed:
        children = await tree.node(node)
        for name, entry in children.items():
            if old.get(name) != entry:
                touched.setdefault(name, []).append((tree, entry))
        for name in old.keys() - children.keys():
            touched.setdefault(name, []).append((tree, None))
    entries = dict(old)
    for name, changes in touched.items():
        merged = changes[0][1] if len(changes) == 1 else await _merge_entry(base, old.get(name), changes, commit, nodes)
        if merged is None:
            entries.pop(name, None)
        else:
            entries[name] = merged
    if not entries:
        return EMPTY, 0
    entries = {name: entries[name] for name in sorted(entries)}  # a node's entries are in name order
    node, data = encode_node(entries)
    nodes[node] = (entries, data)
    return node, sum(e.size for e in entries.values())


async def _merge_entry(base: Tree, old: Entry | None, changes: list[tuple[Tree, Entry | None]], commit: str,
                       nodes: Nodes) -> Entry | None:
    """One path several sources changed: directories merged below, files' changes combined."""
    if all(isinstance(e, DirEntry) for _, e in changes) and not isinstance(old, FileEntry):
        dirs = [(tree, e) for tree, e in changes if isinstance(e, DirEntry)]
        base_node = old.node if isinstance(old, DirEntry) else EMPTY
        node, size = await _merge_dir(base, base_node, [(tree, e.node) for tree, e in dirs], commit, nodes)
        if isinstance(old, DirEntry) and old.node == node:
            return old
        return DirEntry(size, max(e.modified for _, e in dirs), commit, node)
    if isinstance(old, DirEntry) or any(isinstance(e, DirEntry) for _, e in changes):
        raise Unmergeable()
    combined: FileDiff | None = None
    for _, entry in changes:
        diff = _file_diff(old, entry)
        if diff is not None:
            combined = diff if combined is None else combine(combined, diff)
    if combined is None:
        return old
    if combined.kind is FileKind.NONE:
        return None
    return file_after(old if isinstance(old, FileEntry) else None, combined, commit)


def _file_diff(old: Entry | None, new: Entry | None) -> FileDiff | None:
    """What one source did to a file, as tree.changes says it."""
    if new is None:
        return FileDiff(FileKind.NONE, delete=True)
    assert isinstance(new, FileEntry)
    change = file_change(old, new)
    if change is None:
        return None
    replaced, refs = change
    return FileDiff(FileKind.FILE, delete=replaced and old is not None, refs=refs, modified=new.modified)
