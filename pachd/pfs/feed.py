"""Following the commits of some repos: those there now, then each change as it happens.

For readers that keep their own picture of a repo's commits (the pipeline
controller): one read of the history when they start, then only what changed,
so the cost of keeping up follows the new commits, not the history.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from pachd.pfs import keys
from pachd.pfs.records import CommitKey, CommitRecord, decode_commit
from pachd.storage.kv import KV, EventType
from pachd.storage.watching import Changes, watching


@dataclass(frozen=True, slots=True)
class CommitChanges:
    """Commits written (started, finished, archived...) and commits deleted, since the last look."""

    written: list[CommitRecord]
    deleted: list[CommitKey]


class CommitFeed:
    """See CommitFeeds.follow."""

    def __init__(self, initial: list[CommitRecord], changes: Changes) -> None:
        self.initial = initial
        self._changes = changes

    async def next(self) -> CommitChanges:
        """Waits for the next changes, then returns every change queued (safe to cancel while waiting)."""
        events = [await self._changes.next(), *self._changes.drain()]
        written, deleted = [], []
        for event in events:
            if event.type is EventType.PUT:
                written.append(decode_commit(event.value))
            else:
                deleted.append(keys.commit_from_key(event.key))
        return CommitChanges(written, deleted)


class CommitFeeds:
    def __init__(self, *, kv: KV) -> None:
        self._kv = kv

    @contextlib.asynccontextmanager
    async def follow(self, repos: Sequence[str]) -> AsyncIterator[CommitFeed]:
        """The repos' commits now (`initial`), then their changes (`next()`), while the block runs.

        No change slips between the two: the changes start at the revision
        before the first read (a commit may be seen in both).
        """
        revision = await self._kv.revision()
        async with watching(self._kv, [keys.commits(r) for r in repos], revision + 1) as changes:
            initial = [decode_commit(kv.value) for r in repos for kv in (await self._kv.range(keys.commits(r))).kvs]
            yield CommitFeed(initial, changes)
