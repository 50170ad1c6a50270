"""AdminClient: our own administration service (pachyderm.pfs_admin.Admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pachyderm_client._base import Connection, translated
from pachyderm_client._lazy import lazy_module

if TYPE_CHECKING:
    from pachyderm_client.proto import pfs_admin_pb2
else:  # loaded by the first call (see _lazy.py)
    pfs_admin_pb2 = lazy_module("pachyderm_client.proto.pfs_admin_pb2")


class AdminClient(Connection):
    """pachd's administration calls (pachyderm.pfs_admin.Admin; its stub is the Connection's)."""

    @translated
    def garbage_collect(self, grace_seconds: float | None = None,
                        dry_run: bool = False) -> pfs_admin_pb2.GarbageCollectResponse:
        """Removes blocks no commit references, written more than `grace_seconds` ago (None: pachd's default)."""
        request = pfs_admin_pb2.GarbageCollectRequest(dry_run=dry_run)
        if grace_seconds is not None:
            request.grace_seconds = grace_seconds
        return self._admin.GarbageCollect(request, metadata=self.metadata or None)
