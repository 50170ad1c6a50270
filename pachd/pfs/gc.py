"""Garbage collection: removing blocks and tree nodes that no commit references.

Blocks of uploads whose client died, of open commits that were deleted, and
of deleted repos stay in the block store until collected. An object is
referenced when a commit's stored tree reaches it, or an open commit's
pending diffs name it. Collection is safe against concurrent writes:

- it spares every object written or renewed after the cutoff: `grace`
  seconds ago, or earlier if a write in flight on any replica began earlier
  (see uploads.py), less a margin for clock skew;
- a writer reusing an existing object renews it first (BlockStore.renew),
  and the store deletes an object only if it was not renewed meanwhile
  (BlockStore.delete_if_older), so a reused object is never lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from pachd.pfs import keys
from pachd.pfs.blocks import PREFIX as BLOCK_PREFIX
from pachd.pfs.records import decode_commit, decode_diff
from pachd.pfs.tree import EMPTY, NODE_PREFIX, DirEntry, FileEntry, NodeStore
from pachd.pfs.uploads import Uploads
from pachd.storage.blocks import BlockStore
from pachd.storage.kv import KV

logger = logging.getLogger(__name__)

DEFAULT_GRACE = 600.0
"""Seconds an unreferenced object is kept after it was written, by default."""
CLOCK_SKEW = 60.0
"""Margin between the clocks of replicas and of the block store."""


@dataclass(frozen=True, slots=True)
class Collected:
    blocks_removed: int = 0
    block_bytes_removed: int = 0
    nodes_removed: int = 0
    node_bytes_removed: int = 0
    blocks_kept: int = 0
    bytes_kept: int = 0


@dataclass(frozen=True, slots=True)
class References:
    blocks: frozenset[str]  # block hashes
    nodes: frozenset[str]  # tree node hashes


async def references(kv: KV, nodes: NodeStore) -> References:
    """Every block and node that a commit's tree or an open commit's diffs refer to."""
    blocks: set[str] = set()
    seen: set[str] = set()
    stack = [decode_commit(kv_.value).root for kv_ in (await kv.range(keys.all_commits())).kvs]
    while stack:
        node = stack.pop()
        if node == EMPTY or node in seen:
            continue
        seen.add(node)
        for entry in (await nodes.load(node)).values():
            if isinstance(entry, FileEntry):
                blocks.update(ref.hash for ref in entry.refs)
            elif isinstance(entry, DirEntry):
                stack.append(entry.node)
    for prefix in (keys.all_diffs(), keys.all_resets()):
        for item in (await kv.range(prefix)).kvs:
            blocks.update(ref.hash for ref in decode_diff(item.value).refs)
    return References(frozenset(blocks), frozenset(seen))


async def unreferenced(kv: KV, blocks: BlockStore) -> tuple[int, int]:
    """How many blocks (and bytes) no commit references, whatever their age."""
    used = await references(kv, NodeStore(blocks))
    count = size = 0
    async for info in blocks.list(BLOCK_PREFIX):
        if info.name[len(BLOCK_PREFIX):] not in used.blocks:
            count += 1
            size += info.size
    return count, size


async def collect(
    *, kv: KV, blocks: BlockStore, nodes: NodeStore, uploads: Uploads, grace: float = DEFAULT_GRACE,
    dry_run: bool = False, now: Callable[[], float] = time.time,
) -> Collected:
    """Removes unreferenced objects older than the cutoff; returns what went and what stayed."""
    cutoff = now() - grace
    oldest = await uploads.oldest()  # read before the references: a write that begins later is younger
    if oldest is not None:
        cutoff = min(cutoff, oldest - CLOCK_SKEW)
    limit = datetime.fromtimestamp(cutoff, timezone.utc)
    used = await references(kv, nodes)
    counts = {"blocks": [0, 0], "nodes": [0, 0], "kept": [0, 0]}
    for prefix, wanted, what in ((BLOCK_PREFIX, used.blocks, "blocks"), (NODE_PREFIX, used.nodes, "nodes")):
        async for info in blocks.list(prefix):
            name = info.name[len(prefix):]
            if name in wanted or info.created >= limit:
                counts["kept"][0] += what == "blocks"
                counts["kept"][1] += info.size if what == "blocks" else 0
                continue
            if dry_run or await blocks.delete_if_older(info.name, limit):
                counts[what][0] += 1
                counts[what][1] += info.size
    result = Collected(counts["blocks"][0], counts["blocks"][1], counts["nodes"][0], counts["nodes"][1],
                       counts["kept"][0], counts["kept"][1])
    logger.info("garbage collection%s: %d blocks (%d bytes) and %d nodes removed, %d blocks kept",
                " (dry run)" if dry_run else "", result.blocks_removed, result.block_bytes_removed,
                result.nodes_removed, result.blocks_kept)
    return result
