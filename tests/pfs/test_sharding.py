"""Shards partition files and blocks: every item in exactly one shard."""

from __future__ import annotations

from pachd.pfs.records import BlockRef
from pachd.pfs.sharding import EVERYTHING, Shard, block_in_shard, file_in_shard, refs_in_shard, selector


def test_files_fall_in_exactly_one_shard() -> None:
    paths = [f"/dir{i}/file{j}" for i in range(20) for j in range(3)] + [f"/top{i}" for i in range(50)]
    for modulus in (1, 2, 3, 8):
        for path in paths:
            owners = [n for n in range(modulus) if file_in_shard(Shard(n, modulus, 0, 0), path)]
            assert len(owners) == 1


def test_a_top_level_directory_stays_in_one_shard() -> None:
    shard_of = {n for n in range(4) if file_in_shard(Shard(n, 4, 0, 0), "/dir/a")}
    assert shard_of == {n for n in range(4) if file_in_shard(Shard(n, 4, 0, 0), "/dir/b/c")}


def test_blocks_fall_in_exactly_one_shard() -> None:
    for modulus in (1, 2, 5):
        for i in range(100):
            owners = [n for n in range(modulus) if block_in_shard(Shard(0, 0, n, modulus), "/f", f"{i:0128x}")]
            assert len(owners) == 1


def test_no_modulus_selects_everything() -> None:
    assert file_in_shard(EVERYTHING, "/anything")
    assert block_in_shard(EVERYTHING, "/anything", "00")


def test_a_files_refs_in_a_shard_are_those_block_in_shard_picks_in_order() -> None:
    refs = tuple(BlockRef(f"{i % 7:0128x}", i * 10, i * 10 + 10) for i in range(40))
    for modulus in (2, 3):
        shards = [refs_in_shard(Shard(0, 0, n, modulus), "/d/f", refs) for n in range(modulus)]
        for n, picked in enumerate(shards):
            assert picked == tuple(r for r in refs if block_in_shard(Shard(0, 0, n, modulus), "/d/f", r.hash))
        assert sorted((r.hash, r.lower) for shard in shards for r in shard) == sorted((r.hash, r.lower) for r in refs)
    assert refs_in_shard(EVERYTHING, "/d/f", refs) is refs


def test_a_walks_selector_keeps_what_the_shard_functions_say() -> None:
    paths = [f"/dir{i}/file{j}" for i in range(12) for j in range(3)] + [f"/top{i}" for i in range(12)]
    shapes = [(), (BlockRef(f"{1:0128x}", 0, 5),), tuple(BlockRef(f"{i % 3:0128x}", i, i + 1) for i in range(6))]
    for shard in [EVERYTHING, Shard(1, 3, 0, 0), Shard(0, 0, 1, 2), Shard(2, 3, 0, 2), Shard(0, 2, 4, 5)]:
        select = selector(shard)
        for path in paths:
            for refs in shapes:
                kept = tuple(r for r in refs if block_in_shard(shard, path, r.hash))
                expected: tuple[BlockRef, ...] | None
                if not file_in_shard(shard, path):
                    expected = None
                elif not refs:
                    expected = () if block_in_shard(shard, path, "") else None
                else:
                    expected = kept or None
                assert select(path, refs) == expected, (shard, path, refs)
