"""The files a put-file stream has written, held until the stream ends, in bounded memory.

A stream's files become visible only once it has ended (so an interrupted
stream writes nothing), but a stream may carry millions of files: past
HOLD of them, what each file became (its path, kind and block references)
goes to a local file beside the block store's temporary files, and comes back
HOLD at a time when the stream's diffs are written. A crash leaves that file
where the block store's sweep removes it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import BinaryIO

from pachd.pfs.records import BlockRef, FileKind
from pachd.storage.blocks import disk_error

HOLD = 4096
"""Files held in memory at most; more go to the spill file."""

Row = tuple[int, str, FileKind, tuple[BlockRef, ...]]
"""(target number, path, kind, references) of one file."""


class Spill:
    """Rows in order: add() them, then rows() gives them back, HOLD at a time; close() removes the file."""

    def __init__(self, temporary: Callable[[], Path]) -> None:
        self._temporary = temporary
        self._held: list[Row] = []
        self._path: Path | None = None
        self._handle: BinaryIO | None = None

    @property
    def full(self) -> bool:
        return len(self._held) >= HOLD

    def add(self, rows: Iterable[Row]) -> None:
        self._held.extend(rows)

    async def spill(self) -> None:
        """Writes the held rows to the spill file."""
        if not self._held:
            return
        rows, self._held = self._held, []
        lines = b"".join(json.dumps([t, p, k.value, [[r.hash, r.lower, r.upper] for r in refs]],
                                    separators=(",", ":")).encode() + b"\n" for t, p, k, refs in rows)
        try:
            if self._handle is None:
                self._path = self._temporary()
                self._handle = await asyncio.to_thread(open, self._path, "w+b")
            await asyncio.to_thread(self._handle.write, lines)
        except OSError as err:
            raise disk_error(err, f"writing {self._path}") from err

    async def rows(self) -> AsyncIterator[list[Row]]:
        """Every row added, in order, at most HOLD at a time."""
        if self._handle is not None:
            handle = self._handle
            await asyncio.to_thread(handle.seek, 0)
            while lines := await asyncio.to_thread(_read_lines, handle, HOLD):
                yield [_row(line) for line in lines]
        if self._held:
            yield self._held

    async def close(self) -> None:
        handle, path = self._handle, self._path
        self._handle = self._path = None
        self._held = []
        if handle is not None and path is not None:
            def remove() -> None:
                handle.close()
                path.unlink(missing_ok=True)

            await asyncio.to_thread(remove)


def _read_lines(handle: BinaryIO, count: int) -> list[bytes]:
    lines = []
    for _ in range(count):
        line = handle.readline()
        if not line:
            break
        lines.append(line)
    return lines


def _row(line: bytes) -> Row:
    target, path, kind, refs = json.loads(line)
    return target, path, FileKind(kind), tuple(BlockRef(h, lo, hi) for h, lo, hi in refs)
