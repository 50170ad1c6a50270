"""Block cutting: record boundaries, determinism, sizes."""

from __future__ import annotations

import json
import random

import pytest

from pachd.pfs import chunking
from pachd.pfs.chunking import Chunker, Delimiter, Piece


def pieces(data: bytes, delimiter: Delimiter, block_size: int, piece: int = 7) -> list[Piece]:
    chunker = Chunker(delimiter, block_size)
    out: list[Piece] = []
    for start in range(0, len(data), piece):
        out += chunker.feed(data[start : start + piece])
    long = chunker.in_long_block
    rest = chunker.close()
    return out + ([Piece(rest, True)] if rest or long else [])


def cut(data: bytes, delimiter: Delimiter, block_size: int, piece: int = 7) -> list[bytes]:
    blocks: list[bytes] = []
    current = b""
    for part in pieces(data, delimiter, block_size, piece):
        current += b"".join(part.parts)
        if part.ends_block:
            blocks.append(current)
            current = b""
    assert current == b""
    return blocks


def test_none_makes_the_whole_put_one_block() -> None:
    data = bytes(range(256)) * 10
    assert cut(data, Delimiter.NONE, 100) == [data]
    assert cut(data[:50], Delimiter.NONE, 100) == [data[:50]]


@pytest.mark.parametrize("delimiter", [Delimiter.NONE, Delimiter.LINE, Delimiter.JSON])
def test_memory_stays_bounded_whatever_the_record_length(delimiter: Delimiter) -> None:
    # One record of 100 block sizes: it comes out as pieces, none held beyond a block plus a message.
    data = b'"' + b"x" * 10_000 + b'"' if delimiter is Delimiter.JSON else b"x" * 10_000
    chunker = Chunker(delimiter, 100)
    for start in range(0, len(data), 30):
        out = chunker.feed(data[start : start + 30])
        assert chunker.buffered <= 130
        assert all(p.size <= 130 for p in out)
    assert len(cut(data, delimiter, 100, piece=30)) == 1


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


@pytest.mark.parametrize("delimiter", list(Delimiter))
def test_fed_buffers_kept_whole_cut_as_gathered_ones(delimiter: Delimiter, monkeypatch: pytest.MonkeyPatch) -> None:
    # Large feeds are kept as they came (spans of them go out, uncopied), small ones gathered
    # into one buffer: the blocks are the same either way, escapes and lines split across feeds included.
    rng = random.Random(3)
    values = [{"k": "\\" * rng.randint(0, 3) + "v" * rng.randint(0, 40), "q": '"}'} for _ in range(400)]
    data = b"\n".join(json.dumps(v).encode() for v in values)
    gathered = cut(data, delimiter, 512, piece=rng.randint(1, 50))
    monkeypatch.setattr(chunking, "GATHER", 1)
    for piece in (1, 2, 7, 100, 3000):
        assert cut(data, delimiter, 512, piece=piece) == gathered
    assert b"".join(gathered) == data


def test_pieces_are_views_of_the_fed_buffers() -> None:
    chunker = Chunker(Delimiter.LINE, 150_000)
    fed = [b"a" * 100_000 + b"\n", b"b" * 100_000 + b"\n", b"c" * 100]
    out = [piece for data in fed for piece in chunker.feed(data)]
    assert [p.size for p in out] == [100_001]
    assert out[0].parts[0].obj is fed[0]  # the buffer itself: nothing copied
    rest = chunker.close()
    assert rest[0].obj is fed[1] and [len(p) for p in rest] == [100_001, 100]
