"""Our own PFS administration service (pachyderm.pfs_admin.Admin): garbage collection, and
where the same-machine fast path listens (pachd/local_fastpath.py)."""

from __future__ import annotations

from pathlib import Path

import grpc

from pachd.errors import InvalidArgument
from pachd.pfs import Pfs
from pachd.pfs.gc import DEFAULT_GRACE
from pachyderm_client.proto import pfs_admin_pb2, pfs_admin_pb2_grpc

Context = grpc.aio.ServicerContext[object, object]


class AdminService(pfs_admin_pb2_grpc.AdminServicer):
    def __init__(self, pfs: Pfs, *, local_socket: Path | None = None) -> None:
        self._pfs = pfs
        self._local_socket = local_socket

    async def GarbageCollect(self, request: pfs_admin_pb2.GarbageCollectRequest,
                             context: Context) -> pfs_admin_pb2.GarbageCollectResponse:
        if request.grace_seconds < 0:
            raise InvalidArgument(f"grace_seconds must not be negative, not {request.grace_seconds}")
        grace = request.grace_seconds if request.HasField("grace_seconds") else DEFAULT_GRACE
        done = await self._pfs.collect_garbage(grace=grace, dry_run=request.dry_run)
        return pfs_admin_pb2.GarbageCollectResponse(
            blocks_removed=done.blocks_removed, block_bytes_removed=done.block_bytes_removed,
            nodes_removed=done.nodes_removed, node_bytes_removed=done.node_bytes_removed,
            blocks_kept=done.blocks_kept, bytes_kept=done.bytes_kept)

    async def LocalSocket(self, request: pfs_admin_pb2.LocalSocketRequest,
                          context: Context) -> pfs_admin_pb2.LocalSocketResponse:
        return pfs_admin_pb2.LocalSocketResponse(path=str(self._local_socket or ""))
