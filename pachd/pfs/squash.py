"""Squash and replay: carrying the changes of some commits onto others.

A commit's changes are the difference between its parent's tree and its own
(tree.changes skips unchanged subtrees), so both cost what the commits changed,
not the size of the repo.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence

from pachd.errors import CommitFinished, CommitNotOpen, InvalidArgument
from pachd.pfs import keys
from pachd.pfs.commits import YIELD_EVERY, Commits
from pachd.pfs.merge import Merged, Unmergeable, combine, merge
from pachd.pfs.records import CommitKey, CommitRecord, FileDiff, is_ancestor
from pachd.pfs.tree import Tree, TreeBuilder, changes
from pachd.pfs.writes import Writes
from pachd.storage.kv import KV

logger = logging.getLogger(__name__)


class Squash:
    def __init__(self, *, kv: KV, commits: Commits, writes: Writes) -> None:
        self._kv = kv
        self._commits = commits
        self._writes = writes
        commits.squasher = self._apply_squashed

    async def finish(self, repo: str, from_ids: Sequence[str], to_id: str, *, cancel: bool = False) -> CommitRecord:
        """Finishes open `to_id` as `squash(replace=True)` then finish would, without
        writing the squashed changes as pending diffs and reading them back.

        One guarded transaction flags the commit finishing with the squashed
        commits and their provenance; finishing then builds its tree from its
        parent's and those commits' changes (which are finished, so never
        change). A crash after that flag leaves a finishing commit that any
        later finish completes the same way.
        """
        record, revision = await self._commits.get(repo, to_id)
        if not record.is_open:
            raise CommitFinished(f"commit {repo}/{record.id} is already finished")
        if from_ids and not record.finishing:
            added = await self._added_provenance(repo, from_ids, record)
            for upstream in added:  # only hints (readers check the record), so they may come first
                await self._kv.put(keys.provenance_entry(upstream, record.key), b"")
            sources = tuple(from_ids)
            record, revision = await self._commits.mark_finishing(record, revision, lambda c: dataclasses.replace(
                c, squash_from=sources, provenance=tuple(dict.fromkeys(c.provenance + tuple(added)))))
        return await self._commits.finish(repo, record.id, cancel=cancel)

    async def _apply_squashed(self, record: CommitRecord, base: Tree) -> tuple[TreeBuilder | Merged, int]:
        """The changes of `record.squash_from` applied to `base`, and their size.

        Where every squashed commit split from `base` itself and names `record`
        in its changed entries (a job's pods' commits), their trees are merged
        (merge.py): nothing is done per file that only one of them changed.
        """
        merged = await self._merged(record, base)
        if merged is not None:
            return merged
        builder = TreeBuilder(base, record.id)
        size = 0
        collected = await self._collect(record.repo, record.squash_from, record)
        for count, (path, diff) in enumerate(sorted(collected.items())):
            size += diff.size
            await builder.apply(path, diff)
            if count % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a squash of many files: let other calls run between
        return builder, size

    async def _merged(self, record: CommitRecord, base: Tree) -> tuple[Merged, int] | None:
        sources = [(await self._commits.get(record.repo, from_id))[0] for from_id in record.squash_from]
        for source in sources:
            parent = await self._commits.parent(source)
            if (source.is_open or source.squash_into != record.id or (parent.root if parent else "") != base.root
                    or (parent is not None and not is_ancestor(parent.clock, record.clock))):
                return None
        try:
            merged = await merge(base, [await self._commits.view(s) for s in sources], record.id)
        except Unmergeable:
            return None
        return merged, sum(s.size_bytes for s in sources)

    async def _added_provenance(self, repo: str, from_ids: Sequence[str], target: CommitRecord) -> list[CommitKey]:
        """The provenance of the commits squashed (since they split from `target`) that `target` lacks."""
        provenance: dict[CommitKey, None] = {}
        for from_id in from_ids:
            source, _ = await self._commits.get(repo, from_id)
            _, chain = await self._split_point(source, target)
            for commit in chain:
                provenance.update(dict.fromkeys(commit.provenance))
        return [p for p in provenance if p not in target.provenance]

    async def _collect(self, repo: str, from_ids: Sequence[str], target: CommitRecord) -> dict[str, FileDiff]:
        """The changes of `from_ids` since they split from `target`'s history, combined per path."""
        collected: dict[str, FileDiff] = {}
        for from_id in from_ids:
            source, _ = await self._commits.get(repo, from_id)
            base, _ = await self._split_point(source, target)
            async for path, diff in changes(base, await self._commits.view(source)):
                collected[path] = combine(collected[path], diff) if path in collected else diff
        return collected

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
        added = await self._added_provenance(repo, from_ids, target_record)
        collected = await self._collect(repo, from_ids, target_record)
        if replace:
            await self._kv.delete_prefix(keys.diffs(*target_record.key))
        target = await self._writes.open(repo, target_record.id)
        await self._writes.apply(target, sorted(collected.items()))
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

