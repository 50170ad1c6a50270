"""Laying out a pod's /pfs from its commit mounts, and sending /pfs/out back.

/pfs/<input> holds the pod's shard of each input (only what is new, for
incremental inputs); /pfs/prev the previous output; /pfs/out starts as the
previous output too, so `>>` appends to it and `>` rewrites it. After the
user's code ran, each file of /pfs/out is compared with how it started: new
bytes at the end are appended; anything else replaces the file. Where pachd
mounted /pfs/prev and /pfs/out over its laid-out copy of the previous output
(pachd/executor/overlay.py), neither is written here, and only what the
overlay's upper folder holds is compared (upload_over).

Data moves in a few calls however many files there are: each block of the
inputs is read once (ListFileRefs, then GetBlock), and the output goes up
as one block stream named file by file in one call (PutBlock, PutFileRefs).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO
from dataclasses import dataclass
from pathlib import Path


import grpc

from pachyderm_client.proto import fuse_pb2, pfs_pb2, pfs_pb2_grpc, pods_pb2, pods_pb2_grpc

logger = logging.getLogger(__name__)

WORKERS = 4  # blocks read at once
READ = 1024 * 1024
PUT_BATCH = 20_000  # files named per PutFileRefs call
MTIME_MARGIN_NS = 100_000_000  # well beyond any filesystem's timestamp granularity here


class LayoutError(Exception):
    """A file of the pod's commits cannot be written to the local /pfs (e.g. a name
    longer than the local filesystem allows, which PFS does allow)."""

    def __init__(self, path: str, err: OSError) -> None:
        super().__init__(f"cannot lay out {path} in /pfs: {err.strerror or err}")


@dataclass(frozen=True, slots=True)
class Start:
    """How a file of /pfs/out looked before the user's code ran."""

    size: int
    sha256: str
    mtime_ns: int = 0  # as written; a file whose size and mtime are unchanged is not read again


def mount_name(mount: fuse_pb2.CommitMount) -> str:
    return mount.alias or mount.commit.repo.name


class Wire:
    """The calls the shim moves data with: few, whatever the number of files (pachyderm_client/proto/pods.proto)."""

    def __init__(self, channel: grpc.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.pods = pods_pb2_grpc.PodDataStub(channel)
        self.blocks = pfs_pb2_grpc.BlockAPIStub(channel)
        self.metadata = metadata or None

    def block(self, block_hash: str, lower: int, upper: int) -> bytes:
        if upper <= lower:
            return b""
        request = pfs_pb2.GetBlockRequest(block=pfs_pb2.Block(hash=block_hash), offset_bytes=lower,
                                          size_bytes=upper - lower)
        return b"".join(chunk.value for chunk in self.blocks.GetBlock(request, metadata=self.metadata))


Ref = tuple[str, int, int]  # (block hash, lower, upper)


def download(wire: Wire, mounts: list[fuse_pb2.CommitMount], root: Path) -> dict[str, Start]:
    """Writes every mount under root/<name>, reading each block once; returns how /pfs/out started.

    Names are plain strings and each file costs three calls (open, write, close; a file of
    /pfs/out a stat besides): this runs once per file of the inputs."""
    files: list[tuple[str, list[Ref]]] = []  # (path below root, its block refs)
    folders: set[str] = set()
    for mount in mounts:
        name = mount_name(mount)
        folders.add(name)
        for batch in wire.pods.ListFileRefs(mount, metadata=wire.metadata):
            for file in batch.files:
                path = f"{name}/{file.path.lstrip('/')}"
                folders.add(path.rpartition("/")[0])
                files.append((path, [(r.block.hash, r.range.lower, r.range.upper) for r in file.block_refs]))
    base = f"{root}{os.sep}"
    for folder in sorted(folders):  # parents before children: each one mkdir
        try:
            os.makedirs(base + folder, exist_ok=True)
        except OSError as err:
            raise LayoutError(folder, err) from err
    # Files held in one block are written from one read of that block; longer files read their blocks in turn.
    by_block: dict[str, list[tuple[str, Ref]]] = {}
    spread: list[tuple[str, list[Ref]]] = []
    for path, refs in files:
        if len(refs) == 1:
            by_block.setdefault(refs[0][0], []).append((path, refs[0]))
        else:
            spread.append((path, refs))
    started: dict[str, Start] = {}
    creating = threading.Lock()

    def write_block(block_hash: str, members: list[tuple[str, Ref]]) -> None:
        """Writes the files held in one block from one read of it. Blocks are read side by side, but
        their files are created one thread at a time: that is the kernel's work, and threads creating
        small files at once cost about twice the CPU for no less time (the GIL and the file system's
        locks handed back and forth)."""
        lower = min(ref[1] for _, ref in members)
        data = memoryview(wire.block(block_hash, lower, max(ref[2] for _, ref in members)))
        with creating:
            for path, (_, start, end) in members:
                piece = data[start - lower:end - lower]
                mtime = _write_all(base + path, path, piece, path.startswith("out/"))
                if mtime:  # only /pfs/out's files need to be known as they started
                    started[path[4:]] = Start(len(piece), hashlib.sha256(piece).hexdigest(), mtime)

    def write_spread(path: str, refs: list[Ref]) -> None:
        digest, size = hashlib.sha256(), 0
        with _create(base + path, path) as handle:
            for ref in refs:
                piece = wire.block(*ref)
                handle.write(piece)
                digest.update(piece)
                size += len(piece)
        if path.startswith("out/"):
            started[path[4:]] = Start(size, digest.hexdigest(), os.stat(base + path).st_mtime_ns)

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        work = [pool.submit(write_block, h, m) for h, m in by_block.items()]
        work += [pool.submit(write_spread, p, r) for p, r in spread]
        for written in work:
            written.result()
    # A write in the same clock tick as the layout leaves the mtime as it was: only older mtimes are trusted.
    trusted_before = time.time_ns() - MTIME_MARGIN_NS
    return {path: start if start.mtime_ns < trusted_before else dataclasses.replace(start, mtime_ns=0)
            for path, start in started.items()}


def _create(name: str, shown: str) -> BinaryIO:
    try:
        return open(name, "wb")
    except OSError as err:
        raise LayoutError(shown, err) from err


def _write_all(name: str, shown: str, data: memoryview, mtime: bool) -> int:
    """Writes a new file (`shown` is how an error names it); with `mtime`, returns its
    modification time once written (else 0)."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    except OSError as err:
        raise LayoutError(shown, err) from err
    try:
        while data:
            data = data[os.write(fd, data):]
        return os.fstat(fd).st_mtime_ns if mtime else 0
    finally:
        os.close(fd)


def _files(folder: Path, prefix: str = "") -> Iterator[str]:
    """Paths (relative, '/'-separated) of the regular files below `folder`; links are not followed,
    and a directory that cannot be read is passed over (as os.walk does)."""
    try:
        listing = os.scandir(folder)
    except OSError:
        return
    with listing as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                yield from _files(Path(entry.path), f"{prefix}{entry.name}/")
            elif entry.is_file(follow_symlinks=False):
                yield f"{prefix}{entry.name}"


def _start(path: Path, size: int | None = None) -> Start:
    digest = hashlib.sha256()
    remaining = path.stat().st_size if size is None else size
    with open(path, "rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(READ, remaining))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
    return Start(path.stat().st_size if size is None else size, digest.hexdigest())


Send = tuple[str, int, bool]  # (path, from offset, replace)


def upload(wire: Wire, out: pfs_pb2.Commit, folder: Path, started: dict[str, Start]) -> int:
    """Sends the changes of `folder` since `started` into the output commit, finishing it when
    there were any; returns files sent."""
    now = set(_files(folder))
    removed = sorted(path for path in started if path not in now)
    sends: list[Send] = []
    for path in sorted(now):
        before = started.get(path)
        if before is None:
            sends.append((path, 0, False))
            continue
        stat = (folder / path).stat()
        if stat.st_size == before.size and stat.st_mtime_ns == before.mtime_ns:
            continue  # untouched since it was laid out
        sends += _send_over(path, folder / path, stat.st_size, before)
    # A folder that became a file is removed as a folder (its files alone would leave it there, in the way).
    new_files = {path for path, _, replace in sends if not replace and path not in started}
    return _send(wire, out, folder, sends, sorted({_within(path, new_files) for path in removed}))


def _within(path: str, files: set[str]) -> str:
    """The first folder above `path` that is now one of `files`, else `path`."""
    at = path.find("/")
    while at != -1:
        if path[:at] in files:
            return path[:at]
        at = path.find("/", at + 1)
    return path


def upload_over(wire: Wire, out: pfs_pb2.Commit, folder: Path, base: Path, changes: Path) -> int:
    """Sends the changes of `folder` (/pfs/out) into the output commit when it is an overlay:
    `base` (/pfs/prev) below, the output it started as, and `changes` above, holding every
    file the code wrote (and a whiteout for each path it removed). Only the folders of
    `changes` are looked at, so this costs what the code changed, not what the output holds."""
    sends, removed = overlay_changes(folder, base, changes)
    return _send(wire, out, folder, sends, removed)


def overlay_changes(folder: Path, base: Path, changes: Path) -> tuple[list[Send], list[str]]:
    """What to send, and which paths to remove (a file, or a folder and all below it), for an
    overlay `folder` over `base` whose upper folder is `changes`.

    A path is removed where the base has a file or folder the overlay no longer shows as
    such (gone, or now of the other kind); this is read from the two listings of each
    folder of `changes`, whatever the overlay wrote for it (whiteouts, opaque folders)."""
    sends: list[Send] = []
    removed: list[str] = []

    def visit(prefix: str) -> None:
        shown, before = _kinds(folder / prefix), _kinds(base / prefix)
        removed.extend(prefix + name for name, kind in before.items() if shown.get(name) != kind)
        try:
            entries = list(os.scandir(changes / prefix))
        except OSError:
            return
        for entry in entries:
            path = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                if shown.get(entry.name) is _DIR:
                    visit(path + "/")
            elif entry.is_file(follow_symlinks=False) and shown.get(entry.name) is _FILE:
                if before.get(entry.name) is _FILE:
                    now = folder / path
                    sends.extend(_send_over(path, now, now.stat().st_size, _start(base / path)))
                else:
                    sends.append((path, 0, False))

    visit("")
    return sorted(sends), sorted(removed)


_DIR, _FILE = "dir", "file"


def _kinds(folder: Path) -> dict[str, str]:
    """Each folder and regular file directly in `folder` (links are not followed; none if it cannot be read)."""
    try:
        with os.scandir(folder) as entries:
            return {e.name: _DIR if e.is_dir(follow_symlinks=False) else _FILE
                    for e in entries if e.is_dir(follow_symlinks=False) or e.is_file(follow_symlinks=False)}
    except OSError:
        return {}


def _send_over(path: str, now: Path, size: int, before: Start) -> list[Send]:
    """A file that existed before, now `size` bytes: new bytes after its old ones are sent as an
    append; anything else (shorter, rewritten) replaces it; nothing if it is unchanged."""
    if size >= before.size and _start(now, before.size).sha256 == before.sha256:
        return [(path, before.size, False)] if size > before.size else []
    return [(path, 0, True)]


def _send(wire: Wire, out: pfs_pb2.Commit, folder: Path, sends: list[Send], removed: list[str]) -> int:
    """Sends `sends` (from `folder`) and `removed` into the output commit, finishing it when
    there were any; returns files sent.

    All new bytes go up as one block stream (PutBlock), then one call names
    each file's slice of those blocks (PutFileRefs).
    """
    spans: list[tuple[int, int]] = []
    position = 0

    def stream() -> Iterator[pfs_pb2.PutBlockRequest]:
        nonlocal position
        buffer = bytearray()
        base = f"{folder}{os.sep}"
        for path, offset, _ in sends:
            begin = position
            for chunk in _reader(base + path, offset):
                buffer += chunk
                position += len(chunk)
                if len(buffer) >= READ:
                    yield pfs_pb2.PutBlockRequest(value=bytes(buffer), delimiter=pfs_pb2.LINE)
                    buffer.clear()
            spans.append((begin, position))
        if buffer:
            yield pfs_pb2.PutBlockRequest(value=bytes(buffer), delimiter=pfs_pb2.LINE)

    blocks: list[Ref] = []
    if sends:
        stored = wire.blocks.PutBlock(stream(), metadata=wire.metadata)
        blocks = [(r.block.hash, r.range.lower, r.range.upper) for r in stored.block_ref]
    named = list(zip(sends, _slices(blocks, spans)))
    # The last call also finishes the commit: pachd builds its tree from the files at once (FinishJob then
    # finds it finished) instead of storing each file's change first.
    for first in range(0, max(len(named), 1), PUT_BATCH):
        batch = named[first:first + PUT_BATCH]
        if batch or (removed and first == 0):
            request = pods_pb2.PutFileRefsRequest(commit=out, delete=removed if first == 0 else [],
                                                  finish=first + PUT_BATCH >= len(named))
            for (path, _, replace), refs in batch:  # built in place, field by field: once per file of the output
                file = request.files.add(path=path, replace=replace)
                for block_hash, lower, upper in refs:
                    added = file.block_refs.add()
                    added.block.hash = block_hash
                    span = added.range
                    span.lower = lower
                    span.upper = upper
            wire.pods.PutFileRefs(request, metadata=wire.metadata)
    return len(named)


def _slices(blocks: list[Ref], spans: list[tuple[int, int]]) -> Iterator[list[Ref]]:
    """The references covering each span [begin, end) of a stream stored as `blocks` (in order);
    the spans are in order and do not overlap, so the blocks are walked once for all of them."""
    first, offset = 0, 0  # the first block a span may start in, and where it starts in the stream
    for begin, end in spans:
        while first < len(blocks) and offset + blocks[first][2] - blocks[first][1] <= begin:
            offset += blocks[first][2] - blocks[first][1]
            first += 1
        refs, at, index = [], offset, first
        while index < len(blocks) and at < end:
            block_hash, lower, upper = blocks[index]
            size = upper - lower
            if at + size > begin:
                refs.append((block_hash, max(begin, at) - at + lower, min(end, at + size) - at + lower))
            at += size
            index += 1
        yield refs


def _reader(name: str, offset: int) -> Iterator[bytes]:
    fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        while chunk := os.read(fd, READ):
            yield chunk
    finally:
        os.close(fd)
