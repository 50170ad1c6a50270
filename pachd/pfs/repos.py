"""Repos: create, inspect, list and delete."""

from __future__ import annotations

import builtins

import logging
import time
from collections.abc import Callable, Sequence

from pachd.errors import RepoExists, RepoInUse, RepoNotFound
from pachd.pfs import keys
from pachd.pfs.records import RepoRecord, decode_repo, encode
from pachd.storage.kv import KV, Compare, Delete, DeletePrefix, Op, Put

logger = logging.getLogger(__name__)


class Repos:
    def __init__(self, *, kv: KV, now: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._now = now

    async def get(self, name: str) -> tuple[RepoRecord, int]:
        """The repo and its record's revision; RepoNotFound if absent."""
        found = await self._kv.get(keys.repo(name))
        if found is None:
            raise RepoNotFound(f"repo {name} not found", hint="see list-repo for the repos that exist")
        return decode_repo(found.value), found.mod_revision

    async def create(self, name: str, provenance: Sequence[str]) -> RepoRecord:
        full: set[str] = set()
        compares = [Compare(keys.repo(name), 0)]
        for upstream in dict.fromkeys(provenance):
            record, revision = await self.get(upstream)
            full.add(upstream)
            full.update(record.full_provenance)
            compares.append(Compare(keys.repo(upstream), revision))
        if name in full:
            raise RepoInUse(f"repo {name!r} cannot be its own provenance")
        record = RepoRecord(
            name=name,
            created=self._now(),
            provenance=tuple(dict.fromkeys(provenance)),
            full_provenance=tuple(sorted(full)),
        )
        result = await self._kv.txn(compares, [Put(keys.repo(name), encode(record))])
        if not result.succeeded:
            if await self._kv.get(keys.repo(name)) is not None:
                raise RepoExists(f"repo {name} exists", hint="choose another name, or delete-repo it first")
            raise RepoNotFound(f"a provenance repo of {name!r} was deleted meanwhile; try again")
        logger.debug("created repo %s", name)
        return record

    async def inspect(self, name: str) -> RepoRecord:
        return (await self.get(name))[0]

    async def list(self, provenance: Sequence[str] = ()) -> builtins.list[RepoRecord]:
        """Every repo (sorted by name) whose provenance includes all of `provenance`."""
        for name in provenance:
            await self.get(name)
        records = [decode_repo(kv.value) for kv in (await self._kv.range(keys.repos())).kvs]
        wanted = set(provenance)
        return [r for r in records if wanted <= set(r.full_provenance)]

    async def delete(self, name: str, *, force: bool) -> None:
        """Deletes the repo with its commits, branches and pending diffs.

        Refuses while other repos have it as provenance, unless forced.
        """
        _, revision = await self.get(name)
        if not force:
            users = [r.name for r in await self.list([name])]
            if users:
                raise RepoInUse(
                    f"repo {name!r} is the provenance of {', '.join(users)}; delete those first or use force"
                )
        ops: builtins.list[Op] = [
            Delete(keys.repo(name)),
            DeletePrefix(keys.commits(name)),
            DeletePrefix(keys.branches(name)),
            DeletePrefix(keys.repo_diffs(name)),
            DeletePrefix(keys.repo_resets(name)),
            DeletePrefix(keys.repo_provenance(name)),
        ]
        result = await self._kv.txn([Compare(keys.repo(name), revision)], ops)
        if not result.succeeded:
            raise RepoNotFound(f"repo {name!r} changed or was deleted meanwhile; try again")
        logger.debug("deleted repo %s", name)

    async def set_provenance(self, name: str, provenance: Sequence[str]) -> RepoRecord:
        """Replaces the repo's immediate provenance (a pipeline's inputs changed)."""
        record, revision = await self.get(name)
        full: set[str] = set()
        for upstream in provenance:
            full.add(upstream)
            full.update((await self.inspect(upstream)).full_provenance)
        if name in full:
            raise RepoInUse(f"repo {name!r} cannot be its own provenance")
        updated = RepoRecord(record.name, record.created, tuple(dict.fromkeys(provenance)),
                             tuple(sorted(full)), record.size_bytes)
        result = await self._kv.txn([Compare(keys.repo(name), revision)], [Put(keys.repo(name), encode(updated))])
        return updated if result.succeeded else await self.set_provenance(name, provenance)

    async def add_size(self, name: str, size: int) -> tuple[Compare, Put]:
        """The compare and put that add `size` bytes to the repo's size."""
        record, revision = await self.get(name)
        updated = RepoRecord(
            record.name, record.created, record.provenance, record.full_provenance, record.size_bytes + size
        )
        return Compare(keys.repo(name), revision), Put(keys.repo(name), encode(updated))
