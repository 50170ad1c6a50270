"""A tree node's bytes: what is encoded is decoded, alike for alike, and nodes an older pachd stored still read."""

from __future__ import annotations

import gc
import json
import random
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pachd.pfs.records import BlockRef
from pachd.pfs.tree import DirEntry, Entry, FileEntry, NodeStore, decode_node, encode_node
from pachd.storage.localdisk import LocalBlockStore

HASHES = ["a" * 128, "b" * 128, "c" * 128]
COMMITS = ["0" * 32, "1" * 32, "2" * 32]
refs = st.tuples(st.sampled_from(HASHES), st.integers(0, 1 << 40), st.integers(0, 1 << 40)).map(
    lambda r: BlockRef(r[0], min(r[1], r[2]), max(r[1], r[2])))
times = st.one_of(st.sampled_from([0.0, 1796314325.729]), st.floats(0, 4e9, allow_nan=False))
files = st.builds(FileEntry, st.integers(0, 1 << 50), times, st.sampled_from(COMMITS), st.sampled_from(COMMITS),
                  st.lists(refs, max_size=5).map(tuple))
dirs = st.builds(DirEntry, st.integers(0, 1 << 50), times, st.sampled_from(COMMITS), st.sampled_from(["", "d" * 64]))
nodes = st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda n: "/" not in n), st.one_of(files, dirs),
                        max_size=30)


@settings(max_examples=300, deadline=None)
@given(nodes)
def test_a_node_decodes_to_the_entries_it_was_encoded_from(entries: dict[str, Entry]) -> None:
    node, data = encode_node(entries)
    assert decode_node(data) == entries
    assert list(decode_node(data)) == sorted(entries)  # in name order
    shuffled = list(entries.items())
    random.Random(node).shuffle(shuffled)
    assert encode_node(dict(shuffled)) == (node, data)  # the same entries, the same bytes, however they came


def test_what_a_directory_of_one_pods_files_shares_is_written_once() -> None:
    entries = {f"f{n}": FileEntry(36, 1796314325.729, COMMITS[0], COMMITS[0], (BlockRef(HASHES[0], 36 * n, 36 * n + 36),))
               for n in range(1000)}
    _, data = encode_node(entries)
    assert data.count(HASHES[0].encode()) == data.count(COMMITS[0].encode()) == data.count(b"1796314325.729") == 1
    assert len(data) < 40 * len(entries)


def test_a_node_in_the_first_format_still_reads() -> None:
    """What a pachd stored before the format's second version (its commits' trees stay in the store)."""
    stored = json.dumps({"b": [HASHES[1], HASHES[0]], "e": [
        ["a", "f", 7, 1796314325.5, COMMITS[1], COMMITS[0], [[0, 0, 4], [1, 10, 13]]],
        ["empty", "f", 0, 1.0, COMMITS[2], COMMITS[2], []],
        ["sub", "d", 99, 2.5, COMMITS[0], "d" * 64],
    ]}, separators=(",", ":")).encode()
    assert decode_node(stored) == {
        "a": FileEntry(7, 1796314325.5, COMMITS[1], COMMITS[0], (BlockRef(HASHES[1], 0, 4), BlockRef(HASHES[0], 10, 13))),
        "empty": FileEntry(0, 1.0, COMMITS[2], COMMITS[2], ()),
        "sub": DirEntry(99, 2.5, COMMITS[0], "d" * 64),
    }


def test_a_node_of_a_format_this_pachd_does_not_know_is_refused() -> None:
    with pytest.raises(ValueError, match="format 9"):
        decode_node(b'{"v":9,"e":[]}')


async def test_the_node_cache_holds_no_more_memory_than_its_limit(tmp_path: Path) -> None:
    """The limit is on what the decoded entries take in memory, not on their stored bytes
    (a node's bytes are several times smaller than its decoded entries)."""
    limit = 4 * 1024 * 1024
    nodes = {}
    for n in range(24):
        entries = {f"f{i}": FileEntry(36, 1796314325.729, COMMITS[0], COMMITS[0], (BlockRef(HASHES[0], 36 * i, 36 * i + 36),))
                   for i in range(1000 * n, 1000 * n + 1000)}
        node, data = encode_node(entries)
        nodes[node] = (entries, data)
    store = LocalBlockStore(tmp_path / "blocks")
    await NodeStore(store).save(nodes, remember=False)
    del entries
    reader = NodeStore(store, cache_bytes=limit)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for node in nodes:
            await reader.load(node)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert held < 1.25 * limit
    assert await reader.load(next(reversed(nodes))) == next(reversed(nodes.values()))[0]  # still a cache
