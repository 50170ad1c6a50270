"""Cutting a byte stream into blocks at record boundaries.

Blocks are about BLOCK_SIZE bytes. With LINE or JSON delimiters a block is cut
only between records (lines, or top-level JSON values), so no record ever
straddles two blocks; a single record larger than BLOCK_SIZE becomes one
larger block. NONE cuts every BLOCK_SIZE bytes. The cut points depend only on
the bytes, so the same data always yields the same blocks (deduplication).
"""

from __future__ import annotations

import enum
import re

BLOCK_SIZE = 8 * 1024 * 1024


class Delimiter(enum.Enum):
    NONE = 0
    JSON = 1
    LINE = 2


# In JSON, the only bytes that matter for finding where top-level values end:
# an escape (skipped whole), a quote, and brackets.
_JSON_TOKEN = re.compile(rb'\\.|["{}\[\]]', re.DOTALL)


class Chunker:
    """Feeds on bytes, gives back complete blocks; close() gives the rest."""

    def __init__(self, delimiter: Delimiter, block_size: int = BLOCK_SIZE) -> None:
        self.delimiter = delimiter
        self.block_size = block_size
        self._buffer = bytearray()
        # JSON scanning state, kept across feeds.
        self._scanned = 0
        self._depth = 0
        self._in_string = False
        self._boundaries: list[int] = []

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        blocks: list[bytes] = []
        while len(self._buffer) >= self.block_size:
            cut = self._cut_point()
            if cut <= 0:
                break
            blocks.append(bytes(memoryview(self._buffer)[:cut]))  # one copy, not two
            del self._buffer[:cut]
            self._shift(cut)
        return blocks

    def close(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        self._shift(self._scanned)
        return rest

    def _cut_point(self) -> int:
        if self.delimiter is Delimiter.NONE:
            return self.block_size
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
