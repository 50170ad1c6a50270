"""Blocks: content-addressed chunks of file data in the block store.

A block is named by the SHA-512 of its bytes ("blocks/<hex>"), so equal bytes
are stored once. Large files are cut into blocks by the Chunker; small files
of one put-file stream are packed together into shared blocks, each file
referring to its own byte range, so putting thousands of small files costs a
handful of block writes instead of one each.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path

from pachd.errors import InvalidArgument
from pachd.pfs.chunking import BLOCK_SIZE, Buffer, Chunker, Delimiter, Piece, Slice
from pachd.pfs.records import BlockRef
from pachd.storage.blocks import BlockStore, ObjectInfo, Parts, check_room, disk_error, write_new, write_parts

logger = logging.getLogger(__name__)

PREFIX = "blocks/"
SMALL_FILE = 1024 * 1024
"""Files smaller than this are packed with others into shared blocks."""
READ_CHUNK = 2 * 1024 * 1024
"""How much one read (and one streamed message) of file data carries."""
STEP = 8 * 1024 * 1024
"""Bytes of a block larger than a block that are hashed and written at once (see _LongBlock)."""


def block_name(block_hash: str) -> str:
    if len(block_hash) != 128 or not all(c in "0123456789abcdef" for c in block_hash):
        raise InvalidArgument(f"block hash {block_hash[:140]!r} is not a SHA-512 hex digest")
    return PREFIX + block_hash


class BlockWriter:
    """Writes the blocks of one put-file stream, at most `in_flight` at once.

    Use as `async with BlockWriter(store) as writer`. submit() waits while
    `in_flight` writes are running, which pushes back on the stream being
    received. The blocks go into one WriteBatch of the store: commit() waits
    for every write, then makes them all durable together, so metadata that
    refers to them may be committed after commit() returns (and not before).
    Pieces of a block larger than a block (write()) are hashed and appended
    to a temporary file as they come, so memory stays bounded; leaving with
    an error, or without commit(), removes what was written.
    """

    def __init__(self, store: BlockStore, *, in_flight: int = 4) -> None:
        self._store = store
        self._batch = store.batch()
        self._slots = asyncio.Semaphore(in_flight)
        self._tasks = asyncio.TaskGroup()
        self._written: list[asyncio.Task[BlockRef]] = []
        self._long: _LongBlock | None = None

    async def __aenter__(self) -> BlockWriter:
        await self._tasks.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._long is not None:
                await self._long.discard()
                self._long = None
        finally:
            try:
                await self._tasks.__aexit__(*exc)  # type: ignore[arg-type]
            finally:
                await self._batch.discard()  # nothing, after commit()

    async def commit(self) -> None:
        """Every block submitted so far is durable once this returns."""
        for task in self._written:
            await task
        await self._batch.commit()

    async def submit(self, parts: Parts) -> asyncio.Task[BlockRef]:
        """Writes the block whose bytes are `parts` (kept, not copied, until written)."""
        await self._slots.acquire()
        return self._add(self._write(parts))

    def _add(self, write: Coroutine[object, object, BlockRef]) -> asyncio.Task[BlockRef]:
        task = self._tasks.create_task(write)
        self._written.append(task)
        return task

    async def write(self, piece: Piece) -> asyncio.Task[BlockRef] | None:
        """Takes a piece of a block; returns the block's task once its last piece came."""
        if self._long is None:
            if piece.ends_block:
                return await self.submit(piece.parts)
            self._long = await _LongBlock.open(self._store)
        await self._long.append(piece.parts)
        if not piece.ends_block:
            return None
        done, self._long = self._long, None
        await self._slots.acquire()
        return self._add(self._store_long(done))

    async def _write(self, parts: Parts) -> BlockRef:
        try:
            digest = await asyncio.to_thread(_sha512, parts)
            name = PREFIX + digest
            size = sum(len(p) for p in parts)
            if not await self._batch.reuse(name):  # reused: renewed, so garbage collection keeps it
                await self._store.ensure_room(size)
                await self._batch.put(name, parts)
            return BlockRef(digest, 0, size)
        finally:
            self._slots.release()

    async def _store_long(self, block: _LongBlock) -> BlockRef:
        try:
            digest = await block.close()
            await self._batch.put_from(PREFIX + digest, block.path)
            return BlockRef(digest, 0, block.size)
        except BaseException:
            await block.discard()
            raise
        finally:
            self._slots.release()


class _LongBlock:
    """A block larger than a block, on its way through a temporary file.

    Its pieces are gathered into steps of STEP bytes. Each step is hashed in
    one lane and written in another, each lane a worker thread taking the
    steps in order, while the next step is received: the hash (one core's
    work, in order by nature) need not wait for a step's write, nor the
    write for its hash. At most IN_FLIGHT steps are in the lanes (memory
    stays at about IN_FLIGHT + 1 steps).
    """

    IN_FLIGHT = 2

    def __init__(self, path: Path, out: int) -> None:
        self.path = path
        self.size = 0
        self._out = out  # the temporary file's descriptor, -1 once closed
        self._hash = hashlib.sha512()
        self._gathered: list[bytes | memoryview] = []
        self._gathered_size = 0
        self._running: list[asyncio.Future[None]] = []  # each step's hash and write, in order, not waited for yet

    @classmethod
    async def open(cls, store: BlockStore) -> _LongBlock:
        path = store.temporary()
        try:
            return cls(path, await asyncio.to_thread(write_new, path))
        except OSError as err:
            raise disk_error(err, f"writing {path}") from err

    async def append(self, parts: Parts) -> None:
        size = sum(len(p) for p in parts)
        self._gathered.extend(parts)
        self._gathered_size += size
        self.size += size
        if self._gathered_size >= STEP:
            await self._step()

    async def _step(self) -> None:
        await self._wait(keep=2 * (self.IN_FLIGHT - 1))
        parts, self._gathered = self._gathered, []
        size, self._gathered_size = self._gathered_size, 0
        hashed, written = self._running[-2:] or (None, None)  # the step before's, each next in its lane
        self._running += [asyncio.ensure_future(_after(hashed, _update, self._hash, parts)),
                          asyncio.ensure_future(_after(written, self._write, parts, size))]

    def _write(self, parts: Parts, size: int) -> None:
        check_room(self.path.parent, size)
        write_parts(self._out, parts)

    async def _wait(self, keep: int = 0) -> None:
        """Waits for the steps in the lanes but the last `keep` futures; raises what failed in them."""
        running = self._running[: max(len(self._running) - keep, 0)]
        # Shielded: a cancelled stream still waits for the threads in discard() before closing the file.
        results = await asyncio.shield(asyncio.gather(*running, return_exceptions=True))
        del self._running[: len(running)]
        for result in results:
            if isinstance(result, OSError):
                raise disk_error(result, f"writing {self.path}") from result
            if isinstance(result, BaseException):
                raise result

    async def close(self) -> str:
        """Writes what is left; the block's SHA-512 (hex)."""
        if self._gathered:
            await self._step()
        await self._wait()
        try:
            await asyncio.to_thread(self._close)
        except OSError as err:
            raise disk_error(err, f"writing {self.path}") from err
        return self._hash.hexdigest()

    async def discard(self) -> None:
        await asyncio.gather(*self._running, return_exceptions=True)  # no thread may write to it any more
        self._running = []

        def remove() -> None:
            self._close()
            self.path.unlink(missing_ok=True)

        await asyncio.to_thread(remove)

    def _close(self) -> None:
        fd, self._out = self._out, -1
        if fd >= 0:
            os.close(fd)


async def _after(previous: asyncio.Future[None] | None, work: Callable[..., None], *args: object) -> None:
    """Runs `work` in a worker thread once `previous` (the step before, in the same lane) is done;
    what failed there fails this too, so nothing of a later step is hashed or written after it."""
    if previous is not None:
        await previous
    await asyncio.to_thread(work, *args)


def _update(digest: hashlib._Hash, parts: Parts) -> None:
    for part in parts:
        digest.update(part)


def _sha512(parts: Parts) -> str:
    digest = hashlib.sha512()
    _update(digest, parts)
    return digest.hexdigest()


class FileAssembler:
    """Turns the data of a put-file stream's files into block references.

    Feed one file at a time (start, feed..., end). A file that stays under
    SMALL_FILE goes into the shared pack; a larger one is chunked by its
    delimiter into blocks of its own. results() waits for every write and
    returns each file's references, in the order the files ended.
    """

    def __init__(self, writer: BlockWriter) -> None:
        self._writer = writer
        self._files: list[list[asyncio.Task[BlockRef] | _PackSlice]] = []
        self._chunker: Chunker | None = None
        self._current: list[asyncio.Task[BlockRef] | _PackSlice] = []
        self._small = bytearray()
        self._large = False  # the current file outgrew SMALL_FILE: it goes through the chunker
        self._pack = bytearray()
        self._pack_slices: list[_PackSlice] = []

    def start(self, delimiter: Delimiter) -> None:
        self._chunker = Chunker(delimiter)
        self._current = []
        self._small.clear()
        self._large = False

    async def feed(self, data: bytes | Slice) -> None:
        assert self._chunker is not None
        if not self._large:
            if len(self._small) + len(data) < SMALL_FILE:
                self._small += data.view() if isinstance(data, Slice) else data
                return
            self._large = True
            small, self._small = self._small, bytearray()
            await self._cut(small)
        await self._cut(data)

    async def _cut(self, data: Buffer) -> None:
        assert self._chunker is not None
        for piece in await _feed(self._chunker, data):
            task = await self._writer.write(piece)
            if task is not None:
                self._current.append(task)

    async def end(self) -> int:
        """Ends the current file; returns its index in results()."""
        assert self._chunker is not None
        if not self._large:
            await self._add_to_pack(bytes(self._small))
        else:
            self._current.extend(await _close(self._chunker, self._writer))
        self._files.append(self._current)
        self._chunker = None
        self._small.clear()
        self._large = False
        return len(self._files) - 1

    async def _add_to_pack(self, data: bytes) -> None:
        self._current = []
        if not data:
            return
        if len(self._pack) + len(data) > BLOCK_SIZE:
            await self._flush_pack()
        piece = _PackSlice(len(self._pack), len(self._pack) + len(data))
        self._pack += data
        self._pack_slices.append(piece)
        self._current = [piece]

    async def _flush_pack(self) -> None:
        if not self._pack_slices:
            return
        pack, self._pack = self._pack, bytearray()  # handed over whole, not copied
        task = await self._writer.submit((memoryview(pack),))
        for piece in self._pack_slices:
            piece.block = task
        self._pack_slices = []

    async def settle(self) -> list[tuple[BlockRef, ...]]:
        """The references of the files ended since the last settle(), once their blocks are
        written (not yet durable: results() makes every block durable); forgets them."""
        await self._flush_pack()
        return await self._resolve()

    async def results(self) -> list[tuple[BlockRef, ...]]:
        """Every ended file's references (since the last settle()), once all blocks are durable."""
        await self._flush_pack()
        await self._writer.commit()
        return await self._resolve()

    async def _resolve(self) -> list[tuple[BlockRef, ...]]:
        out: list[tuple[BlockRef, ...]] = []
        for parts in self._files:
            refs: list[BlockRef] = []
            for part in parts:
                if isinstance(part, _PackSlice):
                    assert part.block is not None
                    pack = await part.block
                    refs.append(BlockRef(pack.hash, part.lower, part.upper))
                else:
                    refs.append(await part)
            out.append(tuple(refs))
        self._files = []
        return out


class _PackSlice:
    """A small file's place in a pack block that is not written yet."""

    __slots__ = ("lower", "upper", "block")

    def __init__(self, lower: int, upper: int) -> None:
        self.lower = lower
        self.upper = upper
        self.block: asyncio.Task[BlockRef] | None = None


READ_AHEAD = 4
"""Pieces read ahead of the one being sent, so disk reads overlap the stream."""


async def read_refs(store: BlockStore, refs: Sequence[BlockRef], offset: int = 0, size: int = 0) -> AsyncIterator[bytes]:
    """The bytes of `refs` in order, from `offset`, at most `size` (0: all)."""
    pieces = iter(_pieces(refs, offset, size))
    pending: collections.deque[asyncio.Future[bytes]] = collections.deque()
    try:
        for piece in itertools.islice(pieces, READ_AHEAD):
            pending.append(asyncio.ensure_future(store.get(*piece)))
        while pending:
            data = await pending.popleft()
            following = next(pieces, None)
            if following is not None:
                pending.append(asyncio.ensure_future(store.get(*following)))
            yield data
    finally:
        for future in pending:
            future.cancel()


def _pieces(refs: Sequence[BlockRef], offset: int, size: int, step: int = READ_CHUNK) -> list[tuple[str, int, int]]:
    """(object name, offset, size) reads of at most `step` bytes covering the range."""
    remaining = size if size > 0 else None
    out: list[tuple[str, int, int]] = []
    for ref in refs:
        if remaining == 0:
            break
        if offset >= ref.size:
            offset -= ref.size
            continue
        start = ref.lower + offset
        offset = 0
        end = ref.upper if remaining is None else min(ref.upper, start + remaining)
        while start < end:
            read = min(step, end - start)
            out.append((PREFIX + ref.hash, start, read))
            start += read
            if remaining is not None:
                remaining -= read
    return out


def ranges(refs: Sequence[BlockRef], offset: int = 0, size: int = 0) -> list[tuple[str, int, int]]:
    """(object name, offset, size) of each block's part of the range: what read_refs reads, uncut."""
    return _pieces(refs, offset, size, step=1 << 62)


async def stat(store: BlockStore, block_hash: str) -> ObjectInfo:
    return await store.stat(block_name(block_hash))


async def list_blocks(store: BlockStore) -> AsyncIterator[tuple[str, int, datetime]]:
    async for info in store.list(PREFIX):
        yield info.name[len(PREFIX) :], info.size, info.created


async def put_stream(store: BlockStore, delimiter: Delimiter, chunks: AsyncIterator[bytes]) -> list[BlockRef]:
    """Stores a byte stream as blocks cut by `delimiter`; the BlockAPI's PutBlock."""
    async with BlockWriter(store) as writer:
        chunker = Chunker(delimiter)
        tasks = []
        async for data in chunks:
            for piece in await _feed(chunker, data):
                task = await writer.write(piece)
                if task is not None:
                    tasks.append(task)
        tasks += await _close(chunker, writer)
        await writer.commit()
    return [task.result() for task in tasks]


async def _feed(chunker: Chunker, data: Buffer) -> list[Piece]:
    """The chunker's pieces after `data`. Cutting at lines copies nothing and searches in C, so it
    runs on the loop; scanning JSON is Python work per token: off the loop."""
    if chunker.delimiter is Delimiter.JSON:
        return await asyncio.to_thread(chunker.feed, data)
    return chunker.feed(data)


async def _close(chunker: Chunker, writer: BlockWriter) -> list[asyncio.Task[BlockRef]]:
    """The task of the chunker's last block, if there is one."""
    long = chunker.in_long_block
    rest = chunker.close()
    if not rest and not long:
        return []
    task = await writer.write(Piece(rest, True))
    assert task is not None
    return [task]


async def read_block(store: BlockStore, block_hash: str, offset: int = 0, size: int = 0) -> AsyncIterator[bytes]:
    """Bytes of one block from `offset`, at most `size` (0: to the end)."""
    name = block_name(block_hash)
    info = await store.stat(name)
    end = info.size if size == 0 else min(info.size, offset + size)
    if end <= offset:
        return
    async for chunk in read_refs(store, [BlockRef(block_hash, 0, info.size)], offset, end - offset):
        yield chunk
