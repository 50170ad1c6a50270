"""Commits: start, fork, finish, inspect, list, archive, delete, and views.

A commit ID is `branch/number`; a bare branch name means the branch's newest
commit. Each metadata change is one KV transaction guarded by the revisions
it read. A commit's files are its parent's plus its own FileDiffs; finishing
turns those into a stored tree (see tree.py) and drops the diffs.
"""

from __future__ import annotations

import asyncio
import builtins
import dataclasses
import enum
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Protocol

from pachd import validate
from pachd.errors import (
    Aborted,
    CommitCancelled,
    CommitExists,
    CommitFinished,
    CommitNotFound,
    FailedPrecondition,
    FileTypeConflict,
    InvalidArgument,
)
from pachd.pfs import keys
from pachd.pfs.records import (
    BranchRecord,
    CommitKey,
    CommitRecord,
    FileDiff,
    decode_branch,
    decode_commit,
    decode_diff,
    encode,
    is_ancestor,
)
from pachd.pfs.repos import Repos
from pachd.pfs.tree import Node, NodeStore, Tree, TreeBuilder
from pachd.pfs.uploads import Uploads
from pachd.storage.kv import KV, Compare, Delete, DeletePrefix, KeyValue, Op, Put
from pachd.storage.watching import wait_for

logger = logging.getLogger(__name__)

RETRIES = 20
"""How often a transaction that lost a race is retried before Aborted."""
YIELD_EVERY = 256
PAGE = 2000
"""Pending diffs read at once when finishing a commit."""
"""Diffs decoded and applied between turns of the event loop to others."""


class CommitType(enum.Enum):
    ANY = 0
    READ = 1  # finished
    WRITE = 2  # open


class CommitStatus(enum.Enum):
    NORMAL = 0  # neither archived nor cancelled
    ARCHIVED = 1  # archived ones too
    CANCELLED = 2  # cancelled ones too
    ALL = 3


def status_allows(status: CommitStatus, record: CommitRecord) -> bool:
    if status is CommitStatus.ALL:
        return True
    if record.cancelled and status is not CommitStatus.CANCELLED:
        return False
    return not (record.archived and status is not CommitStatus.ARCHIVED)


class Built(Protocol):
    """A commit's tree as its changes left it: stored with build(), read before with view()."""

    def build(self) -> tuple[str, dict[str, tuple[Node, bytes]]]: ...

    def view(self) -> Tree: ...


Squasher = Callable[[CommitRecord, Tree], Awaitable[tuple[Built, int]]]
"""Applies the changes of a squashing commit's `squash_from` to a base tree (see squash.py)."""


class Commits:
    def __init__(self, *, kv: KV, nodes: NodeStore, repos: Repos, uploads: Uploads | None = None,
                 now: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self.nodes = nodes
        self._uploads = uploads or Uploads(kv=kv)
        self._repos = repos
        self._now = now
        self.squasher: Squasher | None = None  # set by Squash

    # -- reading ------------------------------------------------------------

    async def get(self, repo: str, commit_id: str) -> tuple[CommitRecord, int]:
        """The commit (a branch name means its head) and its record's revision."""
        branch, number = validate.commit_id(commit_id)
        if number is None:
            head = await self._kv.get(keys.branch(repo, branch))
            if head is None:
                await self._repos.get(repo)
                raise CommitNotFound(f"commit {commit_id} not found in repo {repo}",
                                     hint=f"no branch {branch!r}; see list-branch {repo}")
            number = decode_branch(head.value).head
        found = await self._kv.get(keys.commit(repo, branch, number))
        if found is None:
            await self._repos.get(repo)
            raise CommitNotFound(f"commit {commit_id} not found in repo {repo}", hint=f"see list-commit {repo}")
        return decode_commit(found.value), found.mod_revision

    async def record(self, key: CommitKey) -> CommitRecord | None:
        found = await self._kv.get(keys.commit(*key))
        return decode_commit(found.value) if found is not None else None

    async def inspect(self, repo: str, commit_id: str) -> CommitRecord:
        """The commit; an open commit's size is what its diffs hold so far."""
        record, _ = await self.get(repo, commit_id)
        if record.is_open:
            pending = await self._kv.range(keys.diffs(*record.key))
            size = sum(decode_diff(kv.value).size for kv in pending.kvs)
            record = dataclasses.replace(record, size_bytes=size)
        return record

    async def view(self, record: CommitRecord, under: str = "/") -> Tree:
        """The commit's tree: stored once finished, else built from its diffs.

        With `under` (a normalised path), an open commit's view is built only
        from the diffs that can affect that path and what lies below it, so
        reading one file or directory of a large open commit costs what that
        path holds; the rest of such a view (sizes of its ancestors, siblings)
        is not to be read.
        """
        if not record.is_open and not record.finishing:
            return Tree(self.nodes, record.root)
        parent = await self.parent(record)
        base = await self.view(parent, under) if parent is not None else Tree(self.nodes, "")
        builder, _ = await self._pending(record, base, under)
        return builder.view()

    async def _pending(self, record: CommitRecord, base: Tree, under: str = "/") -> tuple[Built, int]:
        """What the open commit changed, applied to `base`, and its size: its pending diffs,
        or, once it began finishing as a squash, the squashed commits' changes."""
        if record.squash_from:
            if self.squasher is None:
                raise FailedPrecondition(f"commit {record.repo}/{record.id} is being squashed; nothing can squash here")
            return await self.squasher(record, base)
        return await self._apply_diffs(record, base, under)

    async def _apply_diffs(self, record: CommitRecord, base: Tree, under: str = "/") -> tuple[TreeBuilder, int]:
        """The commit's pending diffs (those affecting `under`) applied to `base`, and their total size."""
        builder = TreeBuilder(base, record.squash_into or record.id)
        reset = await self._kv.get(keys.root_reset(*record.key))
        if reset is not None:
            await builder.apply("/", decode_diff(reset.value))
        size = 0
        if under != "/":  # the path itself and its ancestors: a deletion or file there shapes what is below
            parts = under[1:].split("/")
            for depth in range(1, len(parts) + 1):
                path = "/" + "/".join(parts[:depth])
                found = await self._kv.get(keys.diff(*record.key, path))
                if found is not None:
                    appended = (await self._kv.range(keys.appends(*record.key, path))).kvs
                    for kv_path, diff in in_order([found, *appended]):
                        size += diff.size
                        await builder.apply(kv_path, diff)
        for count, (path, diff) in enumerate(in_order((await self._kv.range(keys.diffs(*record.key, under))).kvs)):
            size += diff.size
            await builder.apply(path, diff)
            if count % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)  # a commit of many files: let other calls run between
        return builder, size

    async def _build_finishing(self, record: CommitRecord, base: Tree) -> tuple[str, int]:
        """The tree of a finishing commit's pending diffs on `base`, stored; its root and size.

        The diffs are read a page at a time and each directory's node is stored as soon as
        the diffs have moved past it, so memory holds a page and one path's directories,
        however many files the commit has (nothing writes to a finishing commit)."""
        builder = TreeBuilder(base, record.squash_into or record.id, sealing=True)
        reset = await self._kv.get(keys.root_reset(*record.key))
        if reset is not None:
            await builder.apply("/", decode_diff(reset.value))
        size = 0
        async for page in _pages(self._kv, keys.diffs(*record.key)):
            for count, (path, diff) in enumerate(in_order(page)):
                size += diff.size
                await builder.apply(path, diff)
                if count % YIELD_EVERY == YIELD_EVERY - 1:
                    await asyncio.sleep(0)  # let other calls run between
            await self.nodes.save(builder.take_sealed(), remember=False)
        root, nodes = await asyncio.to_thread(builder.build)  # encoding and hashing nodes: CPU, off the loop
        await self.nodes.save(nodes)
        return root, size

    async def parent(self, record: CommitRecord) -> CommitRecord | None:
        if record.parent is None:
            return None
        parent = await self.record((record.repo, *record.parent))
        if parent is None:
            raise CommitNotFound(f"the parent of {record.repo}/{record.id} is missing; the repo is damaged")
        return parent

    async def branch_head(self, repo: str, branch: str) -> CommitRecord | None:
        """The newest commit of the branch, or None if there is no such branch."""
        head = await self._kv.get(keys.branch(repo, branch))
        if head is None:
            return None
        return await self.record((repo, branch, decode_branch(head.value).head))

    async def repo_commits(self, repo: str) -> list[CommitRecord]:
        return [decode_commit(kv.value) for kv in (await self._kv.range(keys.commits(repo))).kvs]

    # -- starting -----------------------------------------------------------

    async def start(
        self, repo: str, parent_id: str, provenance: Sequence[tuple[str, str]], *, archived: bool = False,
        new_branch: bool = False, squash_into: str = "",
    ) -> CommitRecord:
        """A new open commit: on `parent_id`'s branch after it, or first on a new branch.

        With archived, the commit is hidden from listings from the start. With
        new_branch, the branch must not exist yet (CommitExists otherwise).
        With squash_into, the files it changes name that commit (see CommitRecord).
        """
        branch, number = validate.commit_id(parent_id)
        for _ in range(RETRIES):
            repo_record, repo_revision = await self._repos.get(repo)
            head = await self._kv.get(keys.branch(repo, branch))
            full, provenance_archived = await self._full_provenance(repo_record.provenance, provenance)
            if head is None:
                if number is not None:
                    raise CommitNotFound(f"commit {parent_id} not found in repo {repo}")
                clock: tuple[tuple[str, int], ...] = ((branch, 0),)
            elif new_branch:
                raise CommitExists(f"branch {branch!r} already exists in repo {repo!r}")
            else:
                head_number = decode_branch(head.value).head
                if number is not None and number != head_number:
                    if number > head_number:
                        raise CommitNotFound(f"commit {parent_id} not found in repo {repo}")
                    raise CommitExists(
                        f"commit {branch}/{number + 1} already exists in {repo!r}; start from the branch "
                        f"head ({branch}) or fork a new branch from {parent_id}"
                    )
                parent, _ = await self.get(repo, f"{branch}/{head_number}")
                clock = parent.clock[:-1] + ((branch, head_number + 1),)
            record = CommitRecord(repo, branch, clock[-1][1], clock, self._now(), full,
                                  archived=archived or provenance_archived, squash_into=squash_into)
            guards = [Compare(keys.repo(repo), repo_revision),
                      Compare(keys.branch(repo, branch), head.mod_revision if head else 0)]
            if await self._create(record, guards):
                return record
        raise Aborted(f"starting a commit on {repo}/{branch} lost too many races; try again")

    async def fork(
        self, repo: str, parent_id: str, branch: str, provenance: Sequence[tuple[str, str]], *, archived: bool = False,
        squash_into: str = "",
    ) -> CommitRecord:
        """A new open commit, first on new branch `branch`, child of `parent_id` (squash_into: as start's)."""
        validate.branch_name(branch)
        for _ in range(RETRIES):
            repo_record, repo_revision = await self._repos.get(repo)
            parent, parent_revision = await self.get(repo, parent_id)
            if await self._kv.get(keys.branch(repo, branch)) is not None:
                raise CommitExists(f"branch {branch!r} already exists in repo {repo!r}; fork onto a new name")
            full, provenance_archived = await self._full_provenance(repo_record.provenance, provenance)
            clock = parent.clock + ((branch, 0),)
            record = CommitRecord(repo, branch, 0, clock, self._now(), full, archived=archived or provenance_archived,
                                  squash_into=squash_into)
            guards = [Compare(keys.repo(repo), repo_revision), Compare(keys.branch(repo, branch), 0),
                      Compare(keys.commit(*parent.key), parent_revision)]
            if await self._create(record, guards):
                return record
        raise Aborted(f"forking {repo}/{parent_id} lost too many races; try again")

    async def _create(self, record: CommitRecord, guards: list[Compare]) -> bool:
        ops: list[Op] = [
            Put(keys.commit(*record.key), encode(record)),
            Put(keys.branch(record.repo, record.branch), encode(BranchRecord(record.number))),
        ]
        index: list[Op] = [Put(keys.provenance_entry(p, record.key), b"") for p in record.provenance]
        room = self._kv.max_txn_ops - len(ops) - len(guards) - 1
        first, rest = index[:room], index[room:]
        result = await self._kv.txn([*guards, Compare(keys.commit(*record.key), 0)], [*ops, *first])
        if not result.succeeded:
            return False
        # Index entries are only hints (readers check the commit's own
        # provenance), so the overflow may follow in later transactions.
        for start in range(0, len(rest), self._kv.max_txn_ops):
            await self._kv.txn([], rest[start : start + self._kv.max_txn_ops])
        logger.debug("started commit %s/%s", record.repo, record.id)
        return True

    async def _full_provenance(
        self, allowed: Sequence[str], provenance: Sequence[tuple[str, str]]
    ) -> tuple[tuple[CommitKey, ...], bool]:
        """The transitive provenance of these commits, and whether any is archived."""
        full: dict[CommitKey, None] = {}
        archived = False
        for repo, commit_id in provenance:
            if repo not in allowed:
                raise InvalidArgument(
                    f"{repo}/{commit_id} cannot be provenance: {repo!r} is not in the repo's provenance"
                )
            record, _ = await self.get(repo, commit_id)
            archived = archived or record.archived
            full[record.key] = None
            full.update(dict.fromkeys(record.provenance))
        return tuple(full), archived

    # -- finishing ----------------------------------------------------------

    async def finish(self, repo: str, commit_id: str, *, cancel: bool = False,
                     last: Sequence[tuple[str, FileDiff]] = ()) -> CommitRecord:
        """Finishes the commit once its parent has finished.

        A cancelled parent cancels this commit too. The commit's tree is
        stored before the commit record says it is finished, so a crash at
        any point leaves either an open commit (finish again) or a complete one.

        `last` are writes (FILE diffs and deletions) applied after the
        pending ones as the commit's last, straight into its tree, never
        stored as pending diffs: the commit must be open and not finishing,
        and a file that cannot be written there (below a file, over a
        directory) raises FileTypeConflict and leaves the commit open as it
        was. A crash before the finish completes loses those writes, as it
        loses an unfinished put-file's; the commit then stays finishing.
        """
        record, revision = await self.get(repo, commit_id)
        if not record.is_open or (last and record.finishing):
            raise CommitFinished(f"commit {repo}/{record.id} is already finished")
        opened = (record, revision)
        if not record.finishing:
            record, revision = await self.mark_finishing(record, revision)
        parent = await self._wait_finished_parent(record)
        async with self._uploads.running():  # the saved nodes are unreferenced until the txn below
            try:
                return await self._finish(record, revision, parent, cancel, last)
            except FileTypeConflict:
                await self._reopen(*opened, revision)
                raise

    async def _finish(self, record: CommitRecord, revision: int, parent: CommitRecord | None,
                      cancel: bool, last: Sequence[tuple[str, FileDiff]] = ()) -> CommitRecord:
        repo = record.repo
        base = Tree(self.nodes, parent.root if parent else "")
        if last:  # never a squash: squashing begins by flagging the commit finishing, which refuses these
            builder, size = await self._apply_diffs(record, base)
            for first in range(0, len(last), YIELD_EVERY):
                if first:
                    await asyncio.sleep(0)  # a pod's output of many files: let other calls run between
                some = last[first:first + YIELD_EVERY]
                await builder.apply_files(some, strict=True)
                size += sum([diff.size for _, diff in some])
            root, nodes = await asyncio.to_thread(builder.build)  # encoding and hashing nodes: CPU, off the loop
            await self.nodes.save(nodes)
        elif record.squash_from:
            built, size = await self._pending(record, base)
            root, nodes = await asyncio.to_thread(built.build)
            await self.nodes.save(nodes)
        else:
            root, size = await self._build_finishing(record, base)
        for _ in range(RETRIES):
            done = dataclasses.replace(
                record, finished=self._now(), finishing=False, size_bytes=size, root=root,
                cancelled=cancel or (parent is not None and parent.cancelled),
            )
            # Archived commits (a pipeline's pod commits) hold no data of their own to count.
            repo_guard, repo_put = await self._repos.add_size(repo, 0 if record.archived else size)
            result = await self._kv.txn(
                [Compare(keys.commit(*record.key), revision), repo_guard],
                [Put(keys.commit(*record.key), encode(done)), repo_put, DeletePrefix(keys.diffs(*record.key)),
                 Delete(keys.root_reset(*record.key))],
            )
            if result.succeeded:
                logger.debug("finished commit %s/%s (%d bytes)", repo, record.id, size)
                return done
            record, revision = await self.get(repo, record.id)
            if not record.is_open:
                raise CommitFinished(f"commit {repo}/{record.id} was finished meanwhile")
        raise Aborted(f"finishing {repo}/{record.id} lost too many races; try again")

    async def _reopen(self, record: CommitRecord, revision: int, flagged: int) -> None:
        """Clears the finishing flag a refused finish set (if nothing changed the commit since)."""
        if record.finishing or flagged == revision:
            return
        await self._kv.txn([Compare(keys.commit(*record.key), flagged)], [Put(keys.commit(*record.key), encode(record))])

    async def mark_finishing(self, record: CommitRecord, revision: int,
                             change: Callable[[CommitRecord], CommitRecord] = lambda c: c) -> tuple[CommitRecord, int]:
        """Flags the commit as finishing, which makes every later write fail (and applies
        `change` in the same transaction, unless another finish flagged it first)."""
        for _ in range(RETRIES):
            if record.finishing:
                return record, revision
            marked = dataclasses.replace(change(record), finishing=True)
            key = keys.commit(*record.key)
            result = await self._kv.txn([Compare(key, revision)], [Put(key, encode(marked))])
            if result.succeeded:
                return marked, result.revision
            record, revision = await self.get(record.repo, record.id)
            if not record.is_open:
                raise CommitFinished(f"commit {record.repo}/{record.id} was finished meanwhile")
        raise Aborted(f"finishing {record.repo}/{record.id} lost too many races; try again")

    async def _wait_finished_parent(self, record: CommitRecord) -> CommitRecord | None:
        if record.parent is None:
            return None
        key = (record.repo, *record.parent)

        async def finished_parent() -> CommitRecord | None:
            parent = await self.record(key)
            if parent is None:
                raise CommitNotFound(f"the parent of {record.repo}/{record.id} was deleted")
            return parent if not parent.is_open else None

        return await wait_for(self._kv, [keys.commit(*key)], finished_parent)

    # -- listing ------------------------------------------------------------

    async def list(
        self,
        from_commits: Sequence[tuple[str, str]],
        provenance: Sequence[tuple[str, str]] = (),
        commit_type: CommitType = CommitType.ANY,
        status: CommitStatus = CommitStatus.NORMAL,
        block: bool = False,
    ) -> builtins.list[CommitRecord]:
        """Commits of the repos in `from_commits` (all repos if empty).

        A repo given with a commit ID lists only that commit's descendants.
        With provenance, only commits whose provenance has all those commits.
        With block, waits until at least one commit matches.
        """
        starts: dict[str, tuple[tuple[str, int], ...] | None] = {}
        for repo, commit_id in from_commits:
            await self._repos.get(repo)
            starts[repo] = (await self.get(repo, commit_id))[0].clock if commit_id else None
        wanted = {(await self.get(repo, commit_id))[0].key for repo, commit_id in provenance}

        async def matching() -> builtins.list[CommitRecord] | None:
            found = [
                c for c in await self._candidates(list(starts))
                if _descends(c, starts.get(c.repo)) and wanted <= set(c.provenance)
                and status_allows(status, c) and _type_allows(commit_type, c)
            ]
            found.sort(key=lambda c: (c.repo, c.clock))
            return found if found or not block else None

        if not block:
            return await matching() or []
        prefixes = [keys.commits(r) for r in starts] or [keys.all_commits()]
        return await wait_for(self._kv, prefixes, matching)

    async def _candidates(self, repos: Sequence[str]) -> builtins.list[CommitRecord]:
        if not repos:
            return [decode_commit(kv.value) for kv in (await self._kv.range(keys.all_commits())).kvs]
        return [c for repo in repos for c in await self.repo_commits(repo)]

    async def list_branches(self, repo: str, status: CommitStatus = CommitStatus.NORMAL) -> builtins.list[str]:
        await self._repos.get(repo)
        names = [keys.branch_from_key(kv.key)[1] for kv in (await self._kv.range(keys.branches(repo))).kvs]
        if status is CommitStatus.ALL:
            return names
        heads = [(await self.get(repo, name))[0] for name in names]
        return [head.branch for head in heads if status_allows(status, head)]

    # -- changing -----------------------------------------------------------

    async def delete(self, repo: str, commit_id: str) -> None:
        """Deletes an open commit that nothing was built on yet."""
        for _ in range(RETRIES):
            record, revision = await self.get(repo, commit_id)
            if not record.is_open or record.finishing:
                raise CommitFinished(f"commit {repo}/{record.id} is finished; only open commits can be deleted")
            children = [c.id for c in await self.repo_commits(repo) if c.key != record.key and
                        is_ancestor(record.clock, c.clock)]
            if children:
                raise FailedPrecondition(
                    f"commit {repo}/{record.id} has children ({', '.join(children)}); delete those first"
                )
            branch = await self._kv.get(keys.branch(repo, record.branch))
            branch_op: Op = (Put(keys.branch(repo, record.branch), encode(BranchRecord(record.number - 1)))
                             if record.number > 0 else Delete(keys.branch(repo, record.branch)))
            ops: builtins.list[Op] = [
                Delete(keys.commit(*record.key)),
                DeletePrefix(keys.diffs(*record.key)),
                Delete(keys.root_reset(*record.key)),
                DeletePrefix(keys.downstream_of(*record.key)),
                branch_op,
            ]
            guards = [Compare(keys.commit(*record.key), revision),
                      Compare(keys.branch(repo, record.branch), branch.mod_revision if branch else 0)]
            if (await self._kv.txn(guards, ops)).succeeded:
                logger.debug("deleted commit %s/%s", repo, record.id)
                return
        raise Aborted(f"deleting {repo}/{commit_id} lost too many races; try again")

    async def archive(self, commits: Sequence[tuple[str, str]]) -> None:
        """Archives the commits and every commit that has any of them as provenance."""
        targets: dict[CommitKey, None] = {}
        for repo, commit_id in commits:
            record, _ = await self.get(repo, commit_id)
            targets[record.key] = None
            for kv in (await self._kv.range(keys.downstream_of(*record.key))).kvs:
                targets[keys.downstream_commit(kv.key)] = None
        for key in targets:
            await self.update(key, lambda c: dataclasses.replace(c, archived=True))

    async def archive_all(self) -> None:
        for kv in (await self._kv.range(keys.all_commits())).kvs:
            await self.update(keys.commit_from_key(kv.key), lambda c: dataclasses.replace(c, archived=True))

    async def update(self, key: CommitKey, change: Callable[[CommitRecord], CommitRecord]) -> CommitRecord | None:
        """Applies `change` to the commit in a guarded transaction; None if it is gone."""
        for _ in range(RETRIES):
            found = await self._kv.get(keys.commit(*key))
            if found is None:
                return None
            updated = change(decode_commit(found.value))
            result = await self._kv.txn([Compare(found.key, found.mod_revision)], [Put(found.key, encode(updated))])
            if result.succeeded:
                return updated
        raise Aborted(f"updating commit {key[0]}/{key[1]}/{key[2]} lost too many races; try again")

    # -- flushing -----------------------------------------------------------

    async def flush(self, commits: Sequence[tuple[str, str]], to_repos: Sequence[str] = ()) -> builtins.list[CommitRecord]:
        """The commits, then one finished commit per downstream repo whose provenance includes any of them.

        Waits until every downstream repo (limited to `to_repos` and their
        provenance, if given) has such a commit.
        """
        given = [(await self.get(repo, commit_id))[0] for repo, commit_id in commits]
        if not given:
            return []
        upstream = {c.key for c in given}
        downstream = await self._downstream_repos({c.repo for c in given}, to_repos)

        async def outputs() -> builtins.list[CommitRecord] | None:
            found: dict[str, CommitRecord] = {}
            for commit in given:
                for kv in (await self._kv.range(keys.downstream_of(*commit.key))).kvs:
                    key = keys.downstream_commit(kv.key)
                    if key[0] not in downstream or key[0] in found:
                        continue
                    record = await self.record(key)
                    if record is None or record.archived or record.is_open or not upstream & set(record.provenance):
                        continue
                    if record.cancelled:
                        raise CommitCancelled(f"commit {record.repo}/{record.id} downstream of the flush was cancelled")
                    found[record.repo] = record
            return [found[r] for r in sorted(found)] if len(found) == len(downstream) else None

        prefixes = [keys.downstream_of(*c.key) for c in given] + [keys.commits(r) for r in sorted(downstream)]
        return given + await wait_for(self._kv, prefixes, outputs)

    async def _downstream_repos(self, repos: set[str], to_repos: Sequence[str]) -> set[str]:
        downstream = {r.name for r in await self._repos.list() if repos & set(r.full_provenance)}
        if to_repos:
            limit: set[str] = set()
            for name in to_repos:
                record = await self._repos.inspect(name)
                limit.add(name)
                limit.update(record.full_provenance)
            downstream &= limit
        return downstream


async def _pages(kv: KV, prefix: str) -> AsyncIterator[list[KeyValue]]:
    """The keys under `prefix` in order, PAGE at a time, a file's diff and its appends
    always in one page (in_order needs them together)."""
    start: str | None = None
    held: list[KeyValue] = []
    while True:
        found = (await kv.range(prefix, start=start, limit=PAGE)).kvs
        page = held + list(found)
        if len(found) < PAGE:
            if page:
                yield page
            return
        start = found[-1].key + "\x00"  # the smallest key after it
        cut = max((i for i, item in enumerate(page) if not keys.append_write(item.key)), default=0)
        if cut > 0:
            yield page[:cut]
        held = page[cut:] if cut > 0 else page


def in_order(kvs: Sequence[KeyValue]) -> Iterator[tuple[str, FileDiff]]:
    """(path, diff) of diff keys in key order, each file's appends right after
    its diff in the order they were written (their revisions)."""
    group: builtins.list[KeyValue] = []
    for kv in [*kvs, None]:
        if kv is not None and keys.append_write(kv.key):
            group.append(kv)
            continue
        group.sort(key=lambda a: (a.mod_revision, a.key))
        for appended in group:
            yield keys.diff_path(appended.key), decode_diff(appended.value)
        group = []
        if kv is not None:
            yield keys.diff_path(kv.key), decode_diff(kv.value)


def _descends(commit: CommitRecord, start: tuple[tuple[str, int], ...] | None) -> bool:
    return start is None or (commit.clock != start and is_ancestor(start, commit.clock))


def _type_allows(commit_type: CommitType, commit: CommitRecord) -> bool:
    if commit_type is CommitType.READ:
        return not commit.is_open
    if commit_type is CommitType.WRITE:
        return commit.is_open
    return True
