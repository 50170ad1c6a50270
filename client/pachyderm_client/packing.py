"""Many small files in a few calls: packed into blocks, then named by reference.

A put of many small files as one PutFile stream costs pachd a message (or
several) per file. Instead, small files are packed together into blocks of at
most PACK bytes, each stored with one BlockAPI PutBlock call (delimiter NONE:
the pack is one block, as pachd packs a stream's small files itself), and the
files are then named as slices of those blocks by our PodData/PutFileRefs, at
most FILES_PER_CALL files per call. So the calls grow with the bytes and the
files divided by FILES_PER_CALL, and pachd holds one call's files at a time.

Each PutFileRefs call is checked and written on its own (a put of more than
FILES_PER_CALL files lands in steps). A pachd without PodData (UNIMPLEMENTED:
v1.2's own) is told apart by an empty first call, and then everything goes
through the PutFile stream as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeGuard

import grpc

from pachyderm_client.proto import pfs_pb2, pfs_pb2_grpc, pods_pb2, pods_pb2_grpc

SMALL_FILE = 1024 * 1024
"""Files smaller than this are packed (pachd packs the same ones in a PutFile stream)."""
PACK = 8 * 1024 * 1024
"""Bytes of one pack block at most (pachd's block size)."""
FILES_PER_CALL = 10_000
"""Files named by one PutFileRefs call at most."""
PACK_AFTER = 64
"""A put of fewer small files than this (and under PACK bytes) goes as one PutFile stream:
packing pays off only for many files, and costs a small put two extra calls."""
MESSAGE = 1024 * 1024
"""Bytes per PutBlock message."""


def packable(data: object) -> TypeGuard[bytes]:
    """Whether put-file data is bytes small enough to pack."""
    return isinstance(data, (bytes, bytearray)) and len(data) < SMALL_FILE


class Packer:
    """Sends small files packed into blocks, and names them in bounded PutFileRefs calls.

    add() each file in order; flush() names every file added so far (call it
    before anything else writes to the commit, so appends keep their order).
    A pack's PutBlock runs while the next pack fills (at most two are held), and a
    PutFileRefs call while the next call's files are packed (one at a time, in order)."""

    def __init__(self, channel: grpc.Channel, into: pfs_pb2.Commit,
                 metadata: tuple[tuple[str, str], ...] | None) -> None:
        """Files go into the open commit `into`, over `channel`, each call carrying `metadata`."""
        self._blocks = pfs_pb2_grpc.BlockAPIStub(channel)
        self._pods = pods_pb2_grpc.PodDataStub(channel)
        self._into = into
        self._metadata = metadata
        self._pack = bytearray()
        self._slices: list[tuple[str, int, int]] = []  # (path, lower, upper) in the filling pack
        self._stored: list[tuple[grpc.Future[pfs_pb2.BlockRefs], list[tuple[str, int, int]]]] = []
        self._named = 0  # files named in the pending call
        self._naming: grpc.Future[pods_pb2.PutFileRefsResponse] | None = None  # the call in flight (one at a time: in order)

    def supported(self) -> bool:
        """Whether pachd has PutFileRefs (an empty call, which also checks the commit is open)."""
        try:
            self._pods.PutFileRefs(pods_pb2.PutFileRefsRequest(commit=self._into), metadata=self._metadata)
        except grpc.RpcError as err:
            if err.code() is grpc.StatusCode.UNIMPLEMENTED:
                return False
            raise
        return True

    def add(self, path: str, data: bytes | bytearray) -> None:
        """Packs the file's bytes (sent once the pack is full; named once FILES_PER_CALL are packed)."""
        if self._pack and len(self._pack) + len(data) > PACK:
            self._store()
        self._slices.append((path, len(self._pack), len(self._pack) + len(data)))
        self._pack += data
        if len(self._slices) + self._named >= FILES_PER_CALL:
            self._send()

    def flush(self) -> None:
        """Names every file added so far (once their blocks are stored); returns once it is done."""
        self._send()
        self._wait()

    def _wait(self) -> None:
        naming, self._naming = self._naming, None
        if naming is not None:
            naming.result()

    def _send(self) -> None:
        """Names the files added so far, in a call that runs while more are added (after the one before)."""
        if self._slices:
            self._store()
        files: list[pods_pb2.FileRef] = []
        for stored, slices in self._stored:
            refs = stored.result().block_ref
            for path, lower, upper in slices:
                files.append(pods_pb2.FileRef(path=path, block_refs=_slice(refs, lower, upper)))
        self._stored, self._named = [], 0
        self._wait()
        if files:
            self._naming = self._pods.PutFileRefs.future(pods_pb2.PutFileRefsRequest(commit=self._into, files=files),
                                                         metadata=self._metadata)

    def cancel(self) -> None:
        """Abandons what is unsent (the blocks already stored are left to garbage collection)."""
        for stored, _ in self._stored:
            stored.cancel()
        if self._naming is not None:
            self._naming.cancel()
        self._stored, self._slices, self._pack, self._naming = [], [], bytearray(), None

    def _store(self) -> None:
        if len(self._stored) >= 2:  # bounded: wait for the oldest pack before sending another
            self._stored[-2][0].result()
        pack, self._pack = self._pack, bytearray()
        future = self._blocks.PutBlock.future(_messages(pack), metadata=self._metadata)
        self._stored.append((future, self._slices))
        self._named += len(self._slices)
        self._slices = []


def _messages(pack: bytearray) -> Iterator[pfs_pb2.PutBlockRequest]:
    view = memoryview(pack)
    for start in range(0, len(view), MESSAGE):
        yield pfs_pb2.PutBlockRequest(value=bytes(view[start : start + MESSAGE]), delimiter=pfs_pb2.NONE)


def _slice(refs: Sequence[pfs_pb2.BlockRef], lower: int, upper: int) -> list[pfs_pb2.BlockRef]:
    """The references of bytes [lower, upper) of a pack stored as `refs` (one block, or in order)."""
    out, offset = [], 0
    if upper == lower:
        return []
    for ref in refs:
        size = ref.range.upper - ref.range.lower
        if offset + size > lower and offset < upper:
            out.append(pfs_pb2.BlockRef(block=ref.block, range=pfs_pb2.ByteRange(
                lower=ref.range.lower + max(lower, offset) - offset,
                upper=ref.range.lower + min(upper, offset + size) - offset)))
        offset += size
        if offset >= upper:
            break
    return out
