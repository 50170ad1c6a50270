"""Cutting a byte stream into blocks at record boundaries, in bounded memory.

Blocks are about BLOCK_SIZE bytes. With LINE or JSON delimiters a block is cut
only between records (lines, or top-level JSON values), so no record ever
straddles two blocks; a single record larger than BLOCK_SIZE becomes one
larger block, as in v1.2.3. NONE makes the whole put one block, as v1.2.3 did
(block-sharded reads of such a file see each put whole). The cut points
depend only on the bytes, so the same data always yields the same blocks
(deduplication).

The chunker never holds more than about BLOCK_SIZE plus one fed message:
a block larger than that comes out as a run of pieces (ends_block=False until
its last piece), which the block writer streams to a temporary file.

Nothing is copied: the chunker keeps the fed buffers as they came (spans of
them, once a cut fell inside one) and a piece is a tuple of memoryviews over
them, which the block writer hashes and writes part by part. Only small feeds
are gathered into one buffer, so a stream of tiny messages does not make
a block of thousands of parts. A feed may be a Slice: a range of a received
message (the data of a PutFile request, see pfs/wire.py), kept as it came.
"""

from __future__ import annotations

import collections
import enum
import re
from dataclasses import dataclass

BLOCK_SIZE = 8 * 1024 * 1024
GATHER = 64 * 1024
"""Feeds smaller than this are copied together into one buffer."""


class Delimiter(enum.Enum):
    NONE = 0
    JSON = 1
    LINE = 2


# In JSON, the only bytes that matter for finding where top-level values end:
# an escape (skipped whole), a quote, and brackets.
_JSON_TOKEN = re.compile(rb'\\.|["{}\[\]]', re.DOTALL)
_BACKSLASH = 0x5C



@dataclass(frozen=True, slots=True)
class Slice:
    """Bytes [start, end) of `buffer`, not copied out of it (a received message's data)."""

    buffer: bytes
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def view(self) -> memoryview:
        return memoryview(self.buffer)[self.start : self.end]


Buffer = bytes | bytearray | memoryview | Slice


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes of a block (its parts, in order); the block ends with this piece if ends_block."""

    parts: tuple[memoryview, ...]
    ends_block: bool = True

    @property
    def size(self) -> int:
        return sum(len(p) for p in self.parts)


class _Span:
    """Bytes [start, end) of a fed buffer."""

    __slots__ = ("buffer", "start", "end")

    def __init__(self, buffer: bytes | bytearray, start: int, end: int) -> None:
        self.buffer = buffer
        self.start = start
        self.end = end


class Chunker:
    """Feeds on bytes, gives back pieces of blocks; close() gives the rest (the end of a block)."""

    def __init__(self, delimiter: Delimiter, block_size: int = BLOCK_SIZE) -> None:
        self.delimiter = delimiter
        self.block_size = block_size
        self._spans: collections.deque[_Span] = collections.deque()
        self._size = 0  # bytes held in the spans
        self._gathering: bytearray | None = None  # the last span's buffer, while small feeds grow it
        # JSON scanning state, kept across feeds.
        self._scanned = 0
        self._depth = 0
        self._in_string = False
        self._escaped = False  # the byte after the scanned ones is escaped
        self._boundaries: list[int] = []
        self._long = False  # inside a block larger than block_size, of which pieces went out

    @property
    def in_long_block(self) -> bool:
        """Whether pieces of an unfinished block have come out (close() ends it)."""
        return self._long

    @property
    def buffered(self) -> int:
        """Bytes held, not yet given out."""
        return self._size

    def feed(self, data: Buffer) -> list[Piece]:
        self._add(data)
        pieces: list[Piece] = []
        if self._long:
            end = self._record_end()
            if end <= 0:
                return self._spill(pieces)
            pieces.append(self._take(end, True))
            self._long = False
        while self._size >= self.block_size:
            cut = self._cut_point()
            if cut <= 0:  # no record ends here: the block outgrows block_size
                self._long = True
                return self._spill(pieces)
            pieces.append(self._take(cut, True))
        return pieces

    def close(self) -> tuple[memoryview, ...]:
        """The rest of the bytes: the end of the current block (empty: none)."""
        rest = self._take(self._size, True).parts
        self._long = False
        return rest

    def _add(self, data: Buffer) -> None:
        size = len(data)
        if not size:
            return
        if size < GATHER:
            if self._gathering is None:
                self._gathering = bytearray()
                self._spans.append(_Span(self._gathering, 0, 0))
            self._gathering += data.view() if isinstance(data, Slice) else data
            self._spans[-1].end += size
        else:
            self._gathering = None
            if isinstance(data, Slice):
                self._spans.append(_Span(data.buffer, data.start, data.end))
            else:
                buffer = data if isinstance(data, (bytes, bytearray)) else bytes(data)
                self._spans.append(_Span(buffer, 0, size))
        self._size += size

    def _take(self, size: int, ends_block: bool) -> Piece:
        parts = []
        left = size
        while left:
            span = self._spans[0]
            if span.buffer is self._gathering:
                self._gathering = None  # a view of it goes out: it must not grow any more
            step = min(left, span.end - span.start)
            parts.append(memoryview(span.buffer)[span.start : span.start + step])
            span.start += step
            left -= step
            if span.start == span.end:
                self._spans.popleft()
        self._size -= size
        self._shift(size)
        return Piece(tuple(parts), ends_block)

    def _spill(self, pieces: list[Piece]) -> list[Piece]:
        """Everything buffered goes out as a piece of the long block."""
        if self._size > 0:
            pieces.append(self._take(self._size, False))
        return pieces

    def _record_end(self) -> int:
        """Where the first record in the buffer ends (0: not in the buffer)."""
        if self.delimiter is Delimiter.NONE:
            return 0
        if self.delimiter is Delimiter.LINE:
            return self._find_newline(0) + 1
        self._scan_json()
        return self._boundaries[0] if self._boundaries else 0

    def _cut_point(self) -> int:
        if self.delimiter is Delimiter.NONE:
            return 0
        if self.delimiter is Delimiter.LINE:
            cut = self._rfind_newline(self.block_size) + 1
            return cut if cut > 0 else self._find_newline(self.block_size) + 1
        self._scan_json()
        within = [b for b in self._boundaries if b <= self.block_size]
        if within:
            return within[-1]
        return self._boundaries[0] if self._boundaries else 0

    def _find_newline(self, start: int) -> int:
        """Offset of the first newline at or after `start` (-1: none)."""
        offset = 0
        for span in self._spans:
            length = span.end - span.start
            if offset + length > start:
                found = span.buffer.find(b"\n", span.start + max(0, start - offset), span.end)
                if found >= 0:
                    return offset + found - span.start
            offset += length
        return -1

    def _rfind_newline(self, limit: int) -> int:
        """Offset of the last newline before `limit` (-1: none)."""
        offsets = []
        offset = 0
        for span in self._spans:
            if offset >= limit:
                break
            offsets.append((offset, span))
            offset += span.end - span.start
        for offset, span in reversed(offsets):
            found = span.buffer.rfind(b"\n", span.start, min(span.end, span.start + limit - offset))
            if found >= 0:
                return offset + found - span.start
        return -1

    def _scan_json(self) -> None:
        offset = 0
        for span in self._spans:
            length = span.end - span.start
            if offset + length <= self._scanned:
                offset += length
                continue
            self._scan_span(span, offset)
            offset += length
        self._scanned = self._size

    def _scan_span(self, span: _Span, offset: int) -> None:
        """Scans the span's bytes from the scanned point on; `offset`: where the span starts in the buffer."""
        start = span.start + max(0, self._scanned - offset)
        if self._escaped:  # an escape ended the last span: its byte opens this one
            start += 1
            self._escaped = False
        consumed = start
        for match in _JSON_TOKEN.finditer(span.buffer, start, span.end):
            consumed = match.end()
            token = match.group()
            if token[0] == _BACKSLASH:  # an escape: whatever follows the backslash is not a token
                continue
            if token == b'"':
                self._in_string = not self._in_string
                if not self._in_string and self._depth == 0:
                    self._boundaries.append(offset + consumed - span.start)
            elif not self._in_string:
                self._depth += 1 if token in (b"{", b"[") else -1
                if self._depth == 0:
                    self._boundaries.append(offset + consumed - span.start)
        # A backslash at the very end has not met the byte it escapes yet.
        self._escaped = span.end > consumed and span.buffer[span.end - 1] == _BACKSLASH

    def _shift(self, cut: int) -> None:
        self._scanned = max(0, self._scanned - cut)
        self._boundaries = [b - cut for b in self._boundaries if b > cut]
