"""The same-machine fast path: file data passed as open file descriptors over a Unix socket.

A pachd that keeps its blocks on the local disk also listens on a Unix socket
(SOCK_SEQPACKET, mode 0600: only its own user, who can read the data directory
anyway, may connect; a peer of another user is refused too). A client on this
machine finds it through Admin.LocalSocket and, instead of streaming the bytes
through gRPC, sends one request and gets file descriptors (SCM_RIGHTS):

- get: pachd resolves the file to its block ranges (Files.refs_of, what GetFile
  reads) and answers with the open blocks and each one's (offset, size); the
  client copies them to its output in the kernel (copy_file_range, sendfile or
  splice). Replies: {"pieces": [[offset, size], ...]} carrying one descriptor
  per piece, as many as needed, then {"done": true}.
- put: the client sends the descriptor of the local file it puts; pachd reads
  it and feeds the bytes to Files.put, the very writer PutFile uses (same
  chunking, same durability: blocks synced before the metadata transaction,
  same errors). Reply: {"done": true}.

A failure is {"error": {"code": "NOT_FOUND", "message": ..., "hint": ...}}, the
status PutFile or GetFile would have given, with the same text. Each request
carries the token a gRPC call would (checked by the AuthInterceptor's rule).
Requests and replies are JSON, one socket record each. A job credential is
refused (PERMISSION_DENIED): pods are confined to their job's repos, which
the gRPC interceptors enforce.
"""

from __future__ import annotations

import array
import asyncio
import json
import logging
import os
import socket
import stat
import struct
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from pachd import validate
from pachd.auth import AUTHORIZATION, AuthInterceptor, PodCredentials
from pachd.errors import InvalidArgument, PachError, PermissionDenied, Unauthenticated
from pachd.interceptors import pach_error
from pachd.pfs import Pfs, blocks, messages
from pachd.pfs.files import FileHeader, PutItem
from pachd.storage.localdisk import LocalBlockStore
from pachyderm_client.proto import pfs_pb2

logger = logging.getLogger(__name__)

SOCKET_NAME = "fastpath.sock"
MAX_PATH = 100
"""A socket's path must fit in sun_path (108 bytes); a longer data dir gets a short folder of its own."""
RECORD = 1 << 16
"""The largest request record read."""
FDS_PER_REPLY = 64
"""Descriptors passed in one reply record (the kernel takes at most 253)."""
READ = 4 * 1024 * 1024
"""Bytes read from a put's descriptor at a time."""
_METHODS = {"get": "/pfs.API/GetFile", "put": "/pfs.API/PutFile"}
_UCRED = struct.Struct("3i")

T = TypeVar("T")


class LocalFastPath:
    """Serves the fast path for one pachd: start(), then stop() on shutdown."""

    def __init__(self, *, pfs: Pfs, store: LocalBlockStore, auth: AuthInterceptor, credentials: PodCredentials,
                 data_dir: Path) -> None:
        self._pfs = pfs
        self._store = store
        self._auth = auth
        self._credentials = credentials
        self._data_dir = data_dir
        self._folder: Path | None = None  # a folder of our own, when the data dir's path is too long
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()
        self.path: Path | None = None

    async def start(self) -> Path:
        """Listens; returns the socket's path."""
        path = self._data_dir.resolve() / SOCKET_NAME
        if len(os.fsencode(path)) > MAX_PATH:
            self._folder = Path(tempfile.mkdtemp(prefix="pachd-fast-"))  # mode 0700
            path = self._folder / SOCKET_NAME
        path.unlink(missing_ok=True)  # left by a pachd that died (the data dir's lock is ours now)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            listener.bind(str(path))
            os.chmod(path, 0o600)
            listener.listen(64)
            listener.setblocking(False)
        except OSError:
            listener.close()
            raise
        self._listener, self.path = listener, path
        self._accepting = asyncio.create_task(self._accept(listener))
        logger.info("same-machine fast path on %s", path)
        return path

    async def stop(self) -> None:
        tasks = [t for t in (self._accepting, *self._serving) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
        if self._folder is not None:
            self._folder.rmdir()

    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, _ = await loop.sock_accept(listener)
            task = asyncio.create_task(self._serve(conn))
            self._serving.add(task)
            task.add_done_callback(self._serving.discard)

    async def _serve(self, conn: socket.socket) -> None:
        fds: list[int] = []
        with conn:
            conn.setblocking(False)
            try:
                data, fds = await _ready(conn, False, lambda: _receive(conn))
                await self._handle(conn, data, fds)
                await _send(conn, {"done": True})
            except (ConnectionError, BrokenPipeError):
                logger.debug("fast path: the client left")
            except Exception as err:  # reported to the client, as the interceptor does for gRPC
                pach = pach_error(err)
                if pach is None:
                    logger.exception("fast path request failed unexpectedly")
                    pach = PachError(f"internal error in the fast path: {err!r}")
                    code = "INTERNAL"
                else:
                    code = pach.code.name
                try:
                    await _send(conn, {"error": {"code": code, "message": pach.message, "hint": pach.hint}})
                except OSError:
                    pass
            finally:
                for fd in fds:
                    os.close(fd)

    async def _handle(self, conn: socket.socket, data: bytes, fds: list[int]) -> None:
        if not _same_user(conn):
            raise PermissionDenied("the fast path serves only the user pachd runs as")
        try:
            request = json.loads(data)
            op = request["op"]
            method = _METHODS[op]
        except (ValueError, KeyError, TypeError) as err:
            raise InvalidArgument(f"malformed fast path request: {err!r}") from None
        token = request.get("token")
        reason = self._auth.refusal(method, [(AUTHORIZATION, f"Bearer {token}")] if token else [])
        if reason is not None:
            raise Unauthenticated(reason)
        if token and self._credentials.job_of(token) is not None:  # pods are confined to their job: gRPC only
            raise PermissionDenied("the same-machine fast path serves no job credential",
                                   hint="pods read and write through gRPC")
        file = pfs_pb2.File(commit=pfs_pb2.Commit(repo=pfs_pb2.Repo(name=str(request.get("repo", ""))),
                                                  id=str(request.get("commit", ""))),
                            path=str(request.get("path", "")))
        logger.debug("fast path %s of %s/%s %s", op, file.commit.repo.name, file.commit.id, file.path)
        if op == "get":
            await self._get(conn, file, request)
        else:
            if len(fds) != 1:
                raise InvalidArgument("a fast path put passes exactly one file descriptor")
            await self._put(file, request, fds[0])

    async def _get(self, conn: socket.socket, file: pfs_pb2.File, request: dict[str, Any]) -> None:
        repo, commit_id, path = messages.file_ref(file)
        offset = validate.non_negative(_int(request, "offset"), "offset_bytes")
        size = validate.non_negative(_int(request, "size"), "size_bytes")
        refs = await self._pfs.files.refs_of(repo, commit_id, path)
        pieces = blocks.ranges(refs, offset, size)
        for start in range(0, len(pieces), FDS_PER_REPLY):
            batch = pieces[start : start + FDS_PER_REPLY]
            opened = await asyncio.to_thread(self._open_all, [name for name, _, _ in batch])
            try:
                await _send(conn, {"pieces": [[at, count] for _, at, count in batch]}, opened)
            finally:
                for fd in opened:
                    os.close(fd)

    def _open_all(self, names: list[str]) -> list[int]:
        opened: list[int] = []
        try:
            for name in names:
                opened.append(self._store.open_object(name))
        except BaseException:
            for fd in opened:
                os.close(fd)
            raise
        return opened

    async def _put(self, file: pfs_pb2.File, request: dict[str, Any], fd: int) -> None:
        repo, commit_id, path = messages.file_ref(file, allow_root=False)
        header = FileHeader(repo, commit_id, path, delimiter=messages.delimiter(_int(request, "delimiter")))
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument("a fast path put reads a regular file")

        async def items() -> AsyncIterator[PutItem]:
            yield header
            offset = 0
            while chunk := await asyncio.to_thread(os.pread, fd, READ, offset):
                offset += len(chunk)
                yield chunk

        await self._pfs.files.put(items())


def _int(request: dict[str, Any], key: str) -> int:
    value = request.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"fast path request: {key} must be an integer")
    return value


def _same_user(conn: socket.socket) -> bool:
    """Whether the peer runs as pachd's user (or root): the socket's mode says so too."""
    _, uid, _ = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return uid in (os.geteuid(), 0)


def _receive(conn: socket.socket) -> tuple[bytes, list[int]]:
    data, ancillary, flags, _ = conn.recvmsg(RECORD, socket.CMSG_SPACE(4 * 4))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        raise ConnectionError("the client closed the connection")
    if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
        for fd in fds:
            os.close(fd)
        raise InvalidArgument("fast path request too large")
    return data, list(fds)


async def _send(conn: socket.socket, reply: dict[str, Any], fds: list[int] | None = None) -> None:
    data = json.dumps(reply).encode()
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    await _ready(conn, True, lambda: conn.sendmsg([data], ancillary))


async def _ready(conn: socket.socket, write: bool, attempt: Callable[[], T]) -> T:
    """attempt() on the non-blocking socket, waiting on the event loop while it would block."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            return attempt()
        except (BlockingIOError, InterruptedError):
            pass
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        (loop.add_writer if write else loop.add_reader)(conn.fileno(), wake)
        try:
            await ready
        finally:
            (loop.remove_writer if write else loop.remove_reader)(conn.fileno())
