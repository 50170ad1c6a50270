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
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

BLOCK_SIZE = 8 * 1024 * 1024


class Delimiter(enum.Enum):
    NONE = 0
    JSON = 1
    LINE = 2


# In JSON, the only bytes that matter for finding where top-level values end:
# an escape (skipped whole), a quote, and brackets.
_JSON_TOKEN = re.compile(rb'\\.|["{}\[\]]', re.DOTALL)


@dataclass(frozen=True, slots=True)
class Piece:
    """Bytes of a block; the block ends with this piece if ends_block."""

    data: bytes
    ends_block: bool = True


class Chunker:
    """Feeds on bytes, gives back pieces of blocks; close() gives the rest (the end of a block)."""

    def __init__(self, delimiter: Delimiter, block_size: int = BLOCK_SIZE) -> None:
        self.delimiter = delimiter
        self.block_size = block_size
        self._buffer = bytearray()
        # JSON scanning state, kept across feeds.
        self._scanned = 0
        self._depth = 0
        self._in_string = False
        self._boundaries: list[int] = []
        self._long = False  # inside a block larger than block_size, of which pieces went out

    @property
    def in_long_block(self) -> bool:
        """Whether pieces of an unfinished block have come out (close() ends it)."""
        return self._long

    def feed(self, data: bytes) -> list[Piece]:
        self._buffer += data
        pieces: list[Piece] = []
        if self._long:
            end = self._record_end()
            if end <= 0:
                return self._spill(pieces)
            pieces.append(self._take(end, True))
            self._long = False
        while len(self._buffer) >= self.block_size:
            cut = self._cut_point()
            if cut <= 0:  # no record ends here: the block outgrows block_size
                self._long = True
                return self._spill(pieces)
            pieces.append(self._take(cut, True))
        return pieces

    def close(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._shift(self._scanned)
        self._long = False
        return rest

    def _take(self, size: int, ends_block: bool) -> Piece:
        piece = Piece(bytes(memoryview(self._buffer)[:size]), ends_block)  # one copy, not two
        del self._buffer[:size]
        self._shift(size)
        return piece

    def _spill(self, pieces: list[Piece]) -> list[Piece]:
        """Everything buffered goes out as a piece of the long block (bar an unscanned JSON escape)."""
        size = self._scanned if self.delimiter is Delimiter.JSON else len(self._buffer)
        if size > 0:
            pieces.append(self._take(size, False))
        return pieces

    def _record_end(self) -> int:
        """Where the first record in the buffer ends (0: not in the buffer)."""
        if self.delimiter is Delimiter.NONE:
            return 0
        if self.delimiter is Delimiter.LINE:
            return self._buffer.find(b"\n") + 1
        self._scan_json()
        return self._boundaries[0] if self._boundaries else 0

    def _cut_point(self) -> int:
        if self.delimiter is Delimiter.NONE:
            return 0
        if self.delimiter is Delimiter.LINE:
            cut = self._buffer.rfind(b"\n", 0, self.block_size) + 1
            return cut if cut > 0 else self._buffer.find(b"\n", self.block_size) + 1
        self._scan_json()
        within = [b for b in self._boundaries if b <= self.block_size]
        if within:
            return within[-1]
        return self._boundaries[0] if self._boundaries else 0

    def _scan_json(self) -> None:
        end = len(self._buffer)
        consumed = self._scanned
        for match in _JSON_TOKEN.finditer(self._buffer, self._scanned, end):
            consumed = match.end()
            token = match.group()
            if token[0] == 0x5C:  # an escape: whatever follows the backslash is not a token
                continue
            if token == b'"':
                self._in_string = not self._in_string
                if not self._in_string and self._depth == 0:
                    self._boundaries.append(match.end())
            elif not self._in_string:
                self._depth += 1 if token in (b"{", b"[") else -1
                if self._depth == 0:
                    self._boundaries.append(match.end())
        # A backslash at the very end has not met the byte it escapes yet:
        # scan it again once more data has come.
        trailing_escape = end > consumed and self._buffer[end - 1] == 0x5C
        self._scanned = end - 1 if trailing_escape else end

    def _shift(self, cut: int) -> None:
        self._scanned = max(0, self._scanned - cut)
        self._boundaries = [b - cut for b in self._boundaries if b > cut]
