"""Squash and replay: carrying the changes of some commits onto others.

A commit's changes are the difference between its parent's tree and its own
(tree.changes skips unchanged subtrees), so both cost what the commits changed,
not the size of the repo.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from pachd.errors import CommitNotOpen, InvalidArgument
from pachd.pfs import keys
from pachd.pfs.commits import Commits
from pachd.pfs.records import CommitKey, CommitRecord, FileDiff, FileKind, is_ancestor
from pachd.pfs.tree import Tree, changes
from pachd.pfs.writes import Writes
from pachd.storage.kv import KV

logger = logging.getLogger(__name__)


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


class Squash:
    def __init__(self, *, kv: KV, commits: Commits, writes: Writes) -> None:
        self._kv = kv
        self._commits = commits
        self._writes = writes

    async def squash(self, repo: str, from_ids: Sequence[str], to_id: str, *, replace: bool = False) -> None:
        """Adds the changes of `from_ids` (since they split from `to_id`) to open `to_id`.

        The target's provenance gains the provenance of every squashed commit.
        With replace, the target's own pending changes are dropped first, which
        makes repeating a squash (after a crash) harmless.
        """
        if not from_ids:
            raise InvalidArgument("squash-commit needs at least one commit to squash from")
        target_record, _ = await self._commits.get(repo, to_id)
        if not target_record.is_open or target_record.finishing:
            raise CommitNotOpen(f"commit {repo}/{target_record.id} is finished; squash into an open commit")
        collected: dict[str, FileDiff] = {}
        provenance: dict[CommitKey, None] = dict.fromkeys(target_record.provenance)
        for from_id in from_ids:
            source, _ = await self._commits.get(repo, from_id)
            base, chain = await self._split_point(source, target_record)
            for commit in chain:
                provenance.update(dict.fromkeys(commit.provenance))
            async for path, diff in changes(base, await self._commits.view(source)):
                collected[path] = combine(collected[path], diff) if path in collected else diff
        if replace:
            await self._kv.delete_prefix(keys.diffs(*target_record.key))
        target = await self._writes.open(repo, target_record.id)
        await self._writes.apply(target, sorted(collected.items()))
        added = [p for p in provenance if p not in target_record.provenance]
        if added:
            await self._commits.update(
                target_record.key,
                lambda c: dataclasses.replace(c, provenance=tuple(dict.fromkeys(c.provenance + tuple(added)))),
            )
            for upstream in added:
                await self._kv.put(keys.provenance_entry(upstream, target_record.key), b"")
        logger.debug("squashed %s into %s/%s", ", ".join(from_ids), repo, target_record.id)

    async def _split_point(self, source: CommitRecord, target: CommitRecord) -> tuple[Tree, list[CommitRecord]]:
        """The tree where `source` split from `target`'s history, and the commits since."""
        chain: list[CommitRecord] = []
        current: CommitRecord | None = source
        while current is not None and not is_ancestor(current.clock, target.clock):
            chain.append(current)
            current = await self._commits.parent(current)
        base = await self._commits.view(current) if current is not None else Tree(self._commits.nodes, "")
        return base, chain

    async def replay(self, repo: str, from_ids: Sequence[str], to_branch: str) -> list[CommitRecord]:
        """Re-applies, one new commit each, the commits of `from_ids`' history not on `to_branch`."""
        if not from_ids:
            raise InvalidArgument("replay-commit needs at least one commit to replay")
        sources = [(await self._commits.get(repo, from_id))[0] for from_id in from_ids]
        head = await self._branch_head(repo, to_branch)
        todo = [
            c for c in await self._commits.repo_commits(repo)
            if any(is_ancestor(c.clock, s.clock) for s in sources)
            and (head is None or not is_ancestor(c.clock, head.clock))
        ]
        todo.sort(key=lambda c: c.clock)
        replayed = []
        for commit in todo:
            parent = await self._commits.parent(commit)
            before = await self._commits.view(parent) if parent is not None else Tree(self._commits.nodes, "")
            diffs = [item async for item in changes(before, await self._commits.view(commit))]
            new = await self._commits.start(repo, to_branch, ())
            await self._writes.apply(await self._writes.open(repo, new.id), diffs)
            replayed.append(await self._commits.finish(repo, new.id))
        return replayed

    async def _branch_head(self, repo: str, branch: str) -> CommitRecord | None:
        if await self._kv.get(keys.branch(repo, branch)) is None:
            return None
        return (await self._commits.get(repo, branch))[0]

