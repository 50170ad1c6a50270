"""Shards: which files and blocks one pod of a job sees.

A file belongs to shard `file_number` of `file_modulus` by the Adler-32 hash of
its top-level path component, so a whole top-level directory stays together;
a block reference belongs to shard `block_number` of `block_modulus` by the
Adler-32 of the file path followed by the block hash. Every file and block
falls in exactly one shard, so the shards of a modulus partition the data.
These are the same hashes Pachyderm v1.2 used, so shards match the original's.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from pachd.pfs.records import BlockRef


@dataclass(frozen=True, slots=True)
class Shard:
    file_number: int = 0
    file_modulus: int = 0  # 0: every file
    block_number: int = 0
    block_modulus: int = 0  # 0: every block

    @property
    def filters_files(self) -> bool:
        return self.file_modulus > 0

    @property
    def filters_blocks(self) -> bool:
        return self.block_modulus > 0


EVERYTHING = Shard()


def file_in_shard(shard: Shard, path: str) -> bool:
    """Whether a file (or directory) at normalised `path` is in the shard."""
    if not shard.filters_files:
        return True
    top = path.lstrip("/").split("/", 1)[0]
    return zlib.adler32(top.encode()) % shard.file_modulus == shard.file_number


def block_in_shard(shard: Shard, path: str, block_hash: str) -> bool:
    """Whether one block of the file at `path` is in the shard.

    An empty file has no blocks; pass "" so it lands in exactly one shard.
    """
    if not shard.filters_blocks:
        return True
    return _block_shard(path, block_hash, shard.block_modulus) == shard.block_number


def refs_in_shard(shard: Shard, path: str, refs: tuple[BlockRef, ...]) -> tuple[BlockRef, ...]:
    """Those of the file's block references in the shard (block_in_shard of each, in one pass:
    a job pod's ListFileRefs runs this for every file of its input)."""
    if not shard.filters_blocks:
        return refs
    modulus, number = shard.block_modulus, shard.block_number
    return tuple([ref for ref in refs if _block_shard(path, ref.hash, modulus) == number])


def _block_shard(path: str, block_hash: str, modulus: int) -> int:
    """The block shard of one block of the file at `path` (v1.2's hash)."""
    return zlib.adler32((path + block_hash).encode()) % modulus
