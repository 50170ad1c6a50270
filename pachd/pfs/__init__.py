"""PFS: repos, commits, files and blocks, over the KV and block stores."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pachd.pfs.blockdiffs import BlockDiffs
from pachd.pfs.commits import Commits
from pachd.pfs.feed import CommitFeeds
from pachd.pfs.files import Files
from pachd.pfs.refs import RefWrites
from pachd.pfs.repos import Repos
from pachd.pfs.squash import Squash
from pachd.pfs.gc import DEFAULT_GRACE, Collected, collect
from pachd.pfs.tree import NodeStore
from pachd.pfs.uploads import Uploads
from pachd.pfs.urls import Fetcher
from pachd.pfs.writes import Writes
from pachd.pfs import keys
from pachd.storage.blocks import BlockStore
from pachd.storage.kv import KV
from pachd.storage.watching import watching


class Pfs:
    """The PFS domain objects, wired to one metadata store and one block store."""

    def __init__(self, *, kv: KV, blocks: BlockStore, fetcher: Fetcher | None = None, replica: str = "",
                 shared: bool = True) -> None:
        self.kv = kv
        self.blocks = blocks
        self.nodes = NodeStore(blocks)
        self.uploads = Uploads(kv=kv, replica=replica, shared=shared)
        self.repos = Repos(kv=kv)
        self.commits = Commits(kv=kv, nodes=self.nodes, repos=self.repos, uploads=self.uploads)
        self.feeds = CommitFeeds(kv=kv)
        writes = Writes(kv=kv, commits=self.commits)
        self.files = Files(blocks=blocks, commits=self.commits, writes=writes, uploads=self.uploads,
                           fetcher=fetcher)
        self.squash = Squash(kv=kv, commits=self.commits, writes=writes)
        self.refs = RefWrites(writes=writes, commits=self.commits, blocks=blocks)
        self.block_diffs = BlockDiffs(kv=kv)

    async def collect_garbage(self, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> Collected:
        """Removes blocks and tree nodes no commit references (see gc.py)."""
        return await collect(kv=self.kv, blocks=self.blocks, nodes=self.nodes, uploads=self.uploads,
                             grace=grace, dry_run=dry_run)

    async def delete_all(self) -> None:
        """Forgets every repo and commit. Blocks stay (they are shared by content)."""
        await self.kv.delete_prefix(keys.ROOT)

    async def changes(self) -> AsyncIterator[str]:
        """What changes from now on, one word per change: "repo" or "commit"."""
        revision = await self.kv.revision()
        async with watching(self.kv, [keys.repos(), keys.all_commits()], revision + 1) as changed:
            while True:
                event = await changed.next()
                yield "repo" if event.key.startswith(keys.repos()) else "commit"
