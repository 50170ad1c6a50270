"""Assembles pachd: storage, domain objects, gRPC services; runs and stops them."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import logging
import shutil
import tempfile
from pathlib import Path

import grpc

from pachd.auth import AuthInterceptor, PodCredentials, PodScopeInterceptor
from pachd.config import PachdConfig
from pachd.console.server import Console
from pachd.executor import create_executor
from pachd.health import HealthService, VersionService
from pachd.interceptors import ErrorInterceptor, ReleaseFreed, WireCodecs
from pachd.local_fastpath import LocalFastPath
from pachd.pfs import Pfs, wire
from pachd.pfs.pods_service import PodDataService
from pachd.pfs.admin_service import AdminService
from pachd.pfs.checkout import Checkouts
from pachd.pfs.urls import Fetcher, UrlPolicy
from pachd.pfs.service import BlockService, PfsService
from pachd.pps import Pps
from pachd.pps.jobs_service import JobsService
from pachd.pps.ownership import replica_identity
from pachd.pps.scope import PodScopes
from pachd.pps.service import InternalJobService, PpsService
from pachd.storage import open_block_store, open_kv
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.lock import DataDirBusy, DataDirLock
from pachyderm_client.proto import (
    health_pb2_grpc, pfs_admin_pb2_grpc, pfs_pb2_grpc, pods_pb2_grpc, pps_internal_pb2_grpc, pps_jobs_pb2_grpc,
    pps_pb2_grpc, protoversion_pb2_grpc,
)

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0
RECEIVING_MANY_BYTES = ("/pfs.API/PutFile", "/pfs.BlockAPI/PutBlock", "/pachpy.pods.PodData/PutFileRefs")
"""Calls after which pachd gives the memory they freed back to the system (interceptors.ReleaseFreed)."""


class Pachd:
    """One running pachd: start() to serve, stop() to shut down in phases."""

    def __init__(self, config: PachdConfig) -> None:
        self.config = config
        self._server: grpc.aio.Server | None = None
        self.pps: Pps | None = None
        self._socket_dir: Path | None = None
        self._lock: DataDirLock | None = None
        self._console: Console | None = None
        self._fastpath: LocalFastPath | None = None

    async def start(self) -> int:
        """Opens storage and starts serving; returns the bound port."""
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock = DataDirLock.acquire(config.data_dir)
        except DataDirBusy as err:
            raise SystemExit(f"pachd: {err}; stop it first, or give this one its own --data-dir") from None
        self.kv = await open_kv(config)
        self.blocks = await open_block_store(config)
        swept = await self.blocks.sweep()
        if swept:
            logger.info("removed %d temporary block files left by interrupted writes", swept)
        self.fetcher = Fetcher(UrlPolicy.from_allow_list(config.url_allow))
        self.pfs = Pfs(kv=self.kv, blocks=self.blocks, fetcher=self.fetcher,
                       replica=replica_identity(config.data_dir), shared=config.uses_etcd)
        await self.pfs.uploads.sweep()
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            # gRPC sets SO_REUSEPORT by default, which lets a second pachd bind the
            # same port and share its requests: a busy port must be an error.
            ("grpc.so_reuseport", 0),
        ]
        self.credentials = await PodCredentials.load(self.kv)
        auth = AuthInterceptor(admin_token=config.auth_token, credentials=self.credentials)
        confined = PodScopeInterceptor(credentials=self.credentials, scopes=PodScopes(self.kv))
        codecs = WireCodecs(decoders={"/pfs.API/PutFile": wire.put_file_request},
                            pre_encoded={"/pfs.API/ListFile", "/pfs.API/GetFile", "/pfs.BlockAPI/GetBlock"})
        released = ReleaseFreed(RECEIVING_MANY_BYTES)
        server = grpc.aio.server(interceptors=[auth, ErrorInterceptor(), confined, codecs, released],
                                 options=options)
        pfs_pb2_grpc.add_APIServicer_to_server(PfsService(self.pfs), server)
        pfs_pb2_grpc.add_BlockAPIServicer_to_server(BlockService(self.pfs), server)
        pods_pb2_grpc.add_PodDataServicer_to_server(PodDataService(self.pfs), server)
        local_socket = await self._start_fast_path(auth) if isinstance(self.blocks, LocalBlockStore) else None
        pfs_admin_pb2_grpc.add_AdminServicer_to_server(AdminService(self.pfs, local_socket=local_socket), server)
        health_pb2_grpc.add_HealthServicer_to_server(HealthService(), server)
        protoversion_pb2_grpc.add_APIServicer_to_server(VersionService(), server)
        port = _listen(server, config)
        warn_if_exposed(config)
        socket_dir = self._pod_socket(server)
        # PPS needs the bound port: local pods dial back to it.
        executor = create_executor(config, port, cluster=self.credentials.cluster, socket_dir=socket_dir,
                                   layouts=Checkouts(self.pfs))
        self.pps = Pps(kv=self.kv, pfs=self.pfs, executor=executor,
                       default_image=config.job_shim_image, replica=replica_identity(config.data_dir),
                       lease_ttl=config.lease_ttl, credential=self.credentials.token,
                       images_ignored=config.executor == "local")
        pps_pb2_grpc.add_APIServicer_to_server(PpsService(self.pps), server)
        pps_jobs_pb2_grpc.add_JobsServicer_to_server(JobsService(self.pps), server)
        pps_internal_pb2_grpc.add_InternalJobAPIServicer_to_server(InternalJobService(
            self.pps, credentials=self.credentials, allow_anonymous=config.allow_anonymous_pods), server)
        await server.start()
        self._server = server
        if config.http_port:
            token = config.auth_token_file.read_text().strip() if config.auth_token_file else None
            self._console = Console(pfs=self.pfs, pps=self.pps, token=token)
            try:
                http_port = await self._console.start(config.host, config.http_port)
            except OSError as err:
                raise SystemExit(f"pachd: cannot serve the console on {config.host}:{config.http_port}: "
                                 f"{err.strerror}; pick another with --http-port (0: no console)") from None
            logger.info("console at http://%s:%d/", _browsable(config.host), http_port)
        await self.pps.start()
        logger.info("pachd serving on %s:%d (metadata: %s, blocks: %s)", config.host, port,
                    f"etcd {config.etcd_address}" if config.uses_etcd else f"sqlite in {config.data_dir}",
                    f"gcs bucket {config.gcs_bucket}" if config.storage == "gcs" else f"{config.data_dir}")
        return port

    async def _start_fast_path(self, auth: AuthInterceptor) -> Path | None:
        """The same-machine fast path's socket (local blocks only); None, with a warning, if it cannot listen."""
        assert isinstance(self.blocks, LocalBlockStore)
        fastpath = LocalFastPath(pfs=self.pfs, store=self.blocks, auth=auth, credentials=self.credentials,
                                 data_dir=self.config.data_dir)
        try:
            path = await fastpath.start()
        except OSError as err:
            logger.warning("no same-machine fast path (clients use gRPC alone): cannot listen in %s: %s",
                           self.config.data_dir, err.strerror)
            return None
        self._fastpath = fastpath
        return path

    def _pod_socket(self, server: grpc.aio.Server) -> Path | None:
        """A Unix socket for local pods without a network, in a directory of its own
        (short enough for a socket's path) that the pods' sandbox binds."""
        if self.config.executor != "local" or self.config.pod_network != "none":
            return None
        self._socket_dir = Path(tempfile.mkdtemp(prefix="pachd-pods-"))
        self._socket_dir.chmod(0o755)
        socket = self._socket_dir / "pachd.sock"
        if server.add_insecure_port(f"unix://{socket}") == 0:
            raise SystemExit(f"pachd: cannot listen on {socket} for pods")
        socket.chmod(0o666)  # pods run as another user; only they (and this host) see it
        return self._socket_dir

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()

    async def stop(self) -> None:
        """Stops taking calls, lets running ones finish (within a grace), stops
        the pipeline and job tasks, closes storage."""
        if self._console is not None:
            await self._console.stop()
        if self._server is not None:
            await self._server.stop(SHUTDOWN_GRACE)
        if self._fastpath is not None:
            await self._fastpath.stop()
        if self.pps is not None:
            await self.pps.close()
        await self.kv.close()
        await self.blocks.close()
        if self._lock is not None:
            self._lock.release()
        self.fetcher.close()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        logger.info("pachd stopped")


def warn_if_exposed(config: PachdConfig) -> None:
    """Says so when pachd answers beyond this machine in plaintext."""
    if is_loopback(config.host) or config.uses_tls:
        return
    logger.warning("pachd serves %s without TLS: anyone who reaches this address can read and change its data%s "
                   "(give --tls-cert/--tls-key, or --host 127.0.0.1)", config.host,
                   "" if config.auth_token_file else " and run pipelines")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _listen(server: grpc.aio.Server, config: PachdConfig) -> int:
    """Binds the configured address; returns the bound port. A busy port ends pachd."""
    address = f"{config.host}:{config.port}"
    try:
        if config.tls_cert is not None and config.tls_key is not None:
            credentials = grpc.ssl_server_credentials([(config.tls_key.read_bytes(), config.tls_cert.read_bytes())])
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises where older versions returned 0
        port = 0
    if port == 0:
        raise SystemExit(f"pachd: cannot listen on {address}: the port is in use (another pachd?) or the address "
                         "is not this machine's; pick another with --port or --host")
    return port


def _browsable(host: str) -> str:
    """An address a browser on this machine can open for a listening address."""
    return "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host


async def serve(config: PachdConfig, stop: asyncio.Event) -> None:
    pachd = Pachd(config)
    await pachd.start()
    # What start-up made (modules, servicers: some 70,000 objects) lives as long as pachd; frozen, it is
    # left out of the collections that follow (each full one walked it: 35-40 ms of a 10,000-file job).
    gc.collect()
    gc.freeze()
    try:
        await stop.wait()
    finally:
        await pachd.stop()
