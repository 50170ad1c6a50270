"""Assembles pachd: storage, domain objects, gRPC services; runs and stops them."""

from __future__ import annotations

import asyncio
import logging

import grpc

from pachd.config import PachdConfig
from pachd.executor import create_executor
from pachd.health import HealthService, VersionService
from pachd.interceptors import ErrorInterceptor
from pachd.pfs import Pfs
from pachd.pfs.admin_service import AdminService
from pachd.pfs.service import BlockService, PfsService
from pachd.pps import Pps
from pachd.pps.ownership import replica_identity
from pachd.pps.service import InternalJobService, PpsService
from pachd.storage import open_block_store, open_kv
from protos import health_pb2_grpc, pfs_admin_pb2_grpc, pfs_pb2_grpc, pps_internal_pb2_grpc, pps_pb2_grpc, protoversion_pb2_grpc

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0


class Pachd:
    """One running pachd: start() to serve, stop() to shut down in phases."""

    def __init__(self, config: PachdConfig) -> None:
        self.config = config
        self._server: grpc.aio.Server | None = None
        self.pps: Pps | None = None

    async def start(self) -> int:
        """Opens storage and starts serving; returns the bound port."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.kv = await open_kv(config)
        self.blocks = await open_block_store(config)
        swept = await self.blocks.sweep()
        if swept:
            logger.info("removed %d temporary block files left by interrupted writes", swept)
        self.pfs = Pfs(kv=self.kv, blocks=self.blocks, replica=replica_identity(config.data_dir),
                       shared=config.uses_etcd)
        await self.pfs.uploads.sweep()
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
        ]
        server = grpc.aio.server(interceptors=[ErrorInterceptor()], options=options)
        pfs_pb2_grpc.add_APIServicer_to_server(PfsService(self.pfs), server)
        pfs_pb2_grpc.add_BlockAPIServicer_to_server(BlockService(self.pfs), server)
        pfs_admin_pb2_grpc.add_AdminServicer_to_server(AdminService(self.pfs), server)
        health_pb2_grpc.add_HealthServicer_to_server(HealthService(), server)
        protoversion_pb2_grpc.add_APIServicer_to_server(VersionService(), server)
        address = f"{config.host}:{config.port}"
        if config.tls_cert is not None and config.tls_key is not None:
            credentials = grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
        if port == 0:
            raise SystemExit(f"pachd: cannot listen on {config.host}:{config.port}")
        # PPS needs the bound port: local pods dial back to it.
        self.pps = Pps(kv=self.kv, pfs=self.pfs, executor=create_executor(config, port),
                       default_image=config.job_shim_image, replica=replica_identity(config.data_dir),
                       lease_ttl=config.lease_ttl)
        pps_pb2_grpc.add_APIServicer_to_server(PpsService(self.pps), server)
        pps_internal_pb2_grpc.add_InternalJobAPIServicer_to_server(InternalJobService(self.pps), server)
        await server.start()
        self._server = server
        await self.pps.start()
        logger.info("pachd serving on %s:%d (metadata: %s, blocks: %s)", config.host, port,
                    f"etcd {config.etcd_address}" if config.uses_etcd else f"sqlite in {config.data_dir}",
                    f"gcs bucket {config.gcs_bucket}" if config.storage == "gcs" else f"{config.data_dir}")
        return port

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def stop(self) -> None:
        """Stops taking calls, lets running ones finish (within a grace), stops
        the pipeline and job tasks, closes storage."""
        if self._server is not None:
            await self._server.stop(SHUTDOWN_GRACE)
        if self.pps is not None:
            await self.pps.close()
        await self.kv.close()
        await self.blocks.close()
        logger.info("pachd stopped")


async def serve(config: PachdConfig, stop: asyncio.Event) -> None:
    pachd = Pachd(config)
    await pachd.start()
    try:
        await stop.wait()
    finally:
        await pachd.stop()
