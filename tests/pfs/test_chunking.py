"""Block cutting: record boundaries, determinism, sizes."""

from __future__ import annotations

import json
import random

import pytest

from pachd.pfs.chunking import Chunker, Delimiter


def cut(data: bytes, delimiter: Delimiter, block_size: int, piece: int = 7) -> list[bytes]:
    chunker = Chunker(delimiter, block_size)
    blocks: list[bytes] = []
    for start in range(0, len(data), piece):
        blocks += chunker.feed(data[start : start + piece])
    rest = chunker.close()
    return blocks + ([rest] if rest else [])


def test_none_cuts_every_block_size() -> None:
    data = bytes(range(256)) * 10
    blocks = cut(data, Delimiter.NONE, 100)
    assert b"".join(blocks) == data
    assert all(len(b) == 100 for b in blocks[:-1])


def test_lines_never_straddle_blocks() -> None:
    rng = random.Random(1)
    lines = [b"x" * rng.randint(0, 40) + b"\n" for _ in range(500)]
    data = b"".join(lines)
    blocks = cut(data, Delimiter.LINE, 64)
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks)
    assert all(len(b) <= 64 for b in blocks)  # no line is longer than a block here


def test_a_line_longer_than_a_block_is_one_block() -> None:
    data = b"short\n" + b"L" * 300 + b"\n" + b"tail\n"
    assert cut(data, Delimiter.LINE, 64) == [b"short\n", b"L" * 300 + b"\n", b"tail\n"]


def test_json_values_never_straddle_blocks() -> None:
    rng = random.Random(2)
    values = [{"k": "v" * rng.randint(0, 30), "n": [1, {"s": 'br}ace"q\\'}]} for _ in range(300)]
    data = b"\n".join(json.dumps(v).encode() for v in values)
    blocks = cut(data, Delimiter.JSON, 128, piece=5)
    assert b"".join(blocks) == data
    decoded = []
    for block in blocks:
        text = block.decode().strip()
        decoder = json.JSONDecoder()
        pos = 0
        while pos < len(text):
            value, pos = decoder.raw_decode(text, pos)
            decoded.append(value)
            while pos < len(text) and text[pos].isspace():
                pos += 1
    assert decoded == values


@pytest.mark.parametrize("delimiter", list(Delimiter))
def test_same_bytes_same_blocks_whatever_the_feed_sizes(delimiter: Delimiter) -> None:
    data = b"".join(b'{"line": %d}\n' % i for i in range(2000))
    assert cut(data, delimiter, 256, piece=3) == cut(data, delimiter, 256, piece=1000)
