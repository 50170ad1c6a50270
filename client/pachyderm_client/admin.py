"""AdminClient: our own administration service (pachyderm.pfs_admin.Admin)."""

from __future__ import annotations

from pachyderm_client._base import Connection, translated
from pachyderm_client.proto import pfs_admin_pb2, pfs_admin_pb2_grpc


class AdminClient(Connection):
    """pachd's administration calls (pachyderm.pfs_admin.Admin)."""

    def __init__(self, address: str, **kwargs: object) -> None:
        """See Connection; the Client passes everything on."""
        super().__init__(address, **kwargs)  # type: ignore[arg-type]
        self._admin = pfs_admin_pb2_grpc.AdminStub(self._channel)

    @translated
    def garbage_collect(self, grace_seconds: float | None = None,
                        dry_run: bool = False) -> pfs_admin_pb2.GarbageCollectResponse:
        """Removes blocks no commit references, written more than `grace_seconds` ago (None: pachd's default)."""
        request = pfs_admin_pb2.GarbageCollectRequest(dry_run=dry_run)
        if grace_seconds is not None:
            request.grace_seconds = grace_seconds
        return self._admin.GarbageCollect(request, metadata=self.metadata or None)
