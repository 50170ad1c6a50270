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
from collections.abc import Callable
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
    return _file_shard(path, shard.file_modulus) == shard.file_number


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


Selector = Callable[[str, tuple[BlockRef, ...]], tuple[BlockRef, ...] | None]


def selector(shard: Shard) -> Selector:
    """What a walk over many files keeps of each (a job pod's input): `select(path, refs)` is
    the file's references in the shard (`refs` itself when all are), or None when the shard
    holds nothing of the file: not its file shard, or none of its blocks (an empty file's
    `refs` are (), and it lies in one block shard). As file_in_shard and block_in_shard
    decide, with the shard's moduli read once and one hash a one-block file."""
    files, blocks = shard.file_modulus, shard.block_modulus
    file_number, block_number = shard.file_number, shard.block_number
    if not files and not blocks:
        return _all_of

    def select(path: str, refs: tuple[BlockRef, ...]) -> tuple[BlockRef, ...] | None:
        if files and _file_shard(path, files) != file_number:
            return None
        if not blocks:
            return refs
        if len(refs) == 1:
            return refs if _block_shard(path, refs[0].hash, blocks) == block_number else None
        if not refs:
            return () if _block_shard(path, "", blocks) == block_number else None
        return refs_in_shard(shard, path, refs) or None

    return select


def _all_of(path: str, refs: tuple[BlockRef, ...]) -> tuple[BlockRef, ...]:
    return refs


def _file_shard(path: str, modulus: int) -> int:
    """The file shard of the file (or directory) at `path`: its top-level component's (v1.2's hash)."""
    return zlib.adler32(path.lstrip("/").split("/", 1)[0].encode()) % modulus


def _block_shard(path: str, block_hash: str, modulus: int) -> int:
    """The block shard of one block of the file at `path` (v1.2's hash)."""
    return zlib.adler32((path + block_hash).encode()) % modulus
