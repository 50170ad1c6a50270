"""AdminClient: our own administration service (pachyderm.pfs_admin.Admin)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from pachyderm_client._base import Connection, translated
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pfs_admin_pb2, pfs_admin_pb2_grpc
else:  # loaded by the first call (see _lazy.py)
    pfs_admin_pb2, pfs_admin_pb2_grpc = lazy_module("pachyderm_client.proto.pfs_admin_pb2"), lazy_module("pachyderm_client.proto.pfs_admin_pb2_grpc")


class AdminClient(Connection):
    """pachd's administration calls (pachyderm.pfs_admin.Admin)."""

    @functools.cached_property
    def _admin(self) -> pfs_admin_pb2_grpc.AdminStub:
        return pfs_admin_pb2_grpc.AdminStub(self._channel)

    @translated
    def garbage_collect(self, grace_seconds: float | None = None,
                        dry_run: bool = False) -> pfs_admin_pb2.GarbageCollectResponse:
        """Removes blocks no commit references, written more than `grace_seconds` ago (None: pachd's default)."""
        request = pfs_admin_pb2.GarbageCollectRequest(dry_run=dry_run)
        if grace_seconds is not None:
            request.grace_seconds = grace_seconds
        return self._admin.GarbageCollect(request, metadata=self.metadata or None)
