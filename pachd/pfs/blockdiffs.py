"""The BlockAPI's diff objects: opaque serialized DiffInfos kept per repo, shard and commit.

Nothing in pachd reads them; they exist so clients of v1.2's BlockAPI work.
"""

from __future__ import annotations

from pachd.errors import NotFound
from pachd.storage.kv import KV

_PREFIX = "blockdiffs/"


def _key(repo: str, shard: int, commit_id: str) -> str:
    # The commit ID may be empty (a per-shard diff of the repo) and may hold "/".
    return f"{_PREFIX}{shard:020d}/{repo}/{commit_id}"


class BlockDiffs:
    def __init__(self, *, kv: KV) -> None:
        self._kv = kv

    async def put(self, repo: str, shard: int, commit_id: str, data: bytes) -> None:
        await self._kv.put(_key(repo, shard, commit_id), data)

    async def get(self, repo: str, shard: int, commit_id: str) -> bytes:
        found = await self._kv.get(_key(repo, shard, commit_id))
        if found is None:
            raise NotFound(f"no diff for repo {repo!r}, shard {shard}, commit {commit_id!r}")
        return found.value

    async def list(self, shard: int) -> list[bytes]:
        return [kv.value for kv in (await self._kv.range(f"{_PREFIX}{shard:020d}/")).kvs]

    async def delete(self, repo: str, shard: int, commit_id: str) -> None:
        await self._kv.delete(_key(repo, shard, commit_id))
