"""The client side of pachd's same-machine fast path (pachd/local_fastpath.py).

When pachd runs on this machine (its address is loopback) with its blocks on
the local disk, it answers Admin.LocalSocket with a Unix socket through which
file data moves as open file descriptors instead of gRPC messages: a read
gets the descriptors of the file's blocks and copies them to its output in the
kernel (copy_file_range where the output is a regular file, else sendfile,
which also writes to pipes, sockets and terminals; plain reads and writes as
the last resort); a put hands pachd the descriptor of the local file. The
PfsClient uses it by itself (copy_file, put_local_file) and falls back to the
gRPC stream whenever it is not there, refused or disabled (PACH_LOCAL_FASTPATH=0).
"""

from __future__ import annotations

import array
import errno
import ipaddress
import json
import os
import socket
from collections.abc import Callable
from typing import Any

import grpc

from pachyderm_client import reading
from pachyderm_client.errors import DataLossError, from_status

RECORD = 1 << 16
MAX_FDS = 64
"""Descriptors one reply carries at most (pachd sends no more)."""
_UNCOPYABLE = {errno.EXDEV, errno.EINVAL, errno.EBADF, errno.EOPNOTSUPP, errno.ENOSYS, errno.ESPIPE, errno.ETXTBSY}
"""What copy_file_range or sendfile say for an output (or pair of files) they cannot write to."""


class Unreachable(Exception):
    """The fast path's socket is absent or refuses connections: use gRPC."""


def is_loopback(address: str) -> bool:
    """Whether host:port names this machine (loopback, or 0.0.0.0/:: which connect here)."""
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


class LocalSocket:
    """Requests over the fast path's socket, one connection each."""

    def __init__(self, path: str, token: str | None) -> None:
        """`path`: the socket pachd named (Admin.LocalSocket); `token`: what gRPC calls would carry."""
        self.path = path
        self._token = token

    def _connect(self) -> socket.socket:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            conn.connect(self.path)
        except OSError as err:
            conn.close()
            raise Unreachable(f"{self.path}: {err.strerror}") from None
        return conn

    def _request(self, op: str, repo: str, commit: str, path: str, **fields: int) -> dict[str, Any]:
        return {"op": op, "repo": repo, "commit": commit, "path": path, "token": self._token or "", **fields}

    def get(self, repo: str, commit: str, path: str, out: int, *, offset: int = 0, size: int = 0,
            progress: Callable[[int], None] | None = None) -> int:
        """Writes the file's bytes (from `offset`, `size` of them if not 0) to the descriptor `out`;
        returns how many. Raises Unreachable before anything is written, or pachd's error."""
        with self._connect() as conn:
            conn.sendmsg([json.dumps(self._request("get", repo, commit, path, offset=offset, size=size)).encode()])
            copier = Copier(out)
            written = 0
            while True:
                reply, fds = _receive(conn)
                try:
                    for fd, (at, count) in zip(fds, reply.get("pieces", ())):
                        copier.copy(fd, at, count)
                        written += count
                        if progress is not None:
                            progress(count)
                finally:
                    for fd in fds:
                        os.close(fd)
                if "pieces" not in reply:
                    return written

    def put(self, repo: str, commit: str, path: str, source: int, delimiter: int) -> None:
        """Appends the regular file open at `source` to the file in the open commit (pachd reads it)."""
        with self._connect() as conn:
            request = json.dumps(self._request("put", repo, commit, path, delimiter=delimiter)).encode()
            conn.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [source]))])
            reply, fds = _receive(conn)
            for fd in fds:
                os.close(fd)


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """The next reply and its descriptors; pachd's error raised as the client's typed error."""
    data, ancillary, _, _ = conn.recvmsg(RECORD, socket.CMSG_SPACE(MAX_FDS * 4))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        raise DataLossError("pachd closed the fast path before answering", grpc.StatusCode.DATA_LOSS)
    reply: dict[str, Any] = json.loads(data)
    if "error" in reply:
        for fd in fds:
            os.close(fd)
        error = reply["error"]
        raise from_status(str(error.get("code", "")), str(error.get("message", "")), str(error.get("hint", "")))
    return reply, list(fds)


class Copier:
    """Copies ranges of files to one output descriptor, in the kernel where the output allows."""

    def __init__(self, out: int) -> None:
        """`out`: the descriptor written to, at its current position."""
        self._out = out
        self._ways: list[Callable[[int, int, int], int]] = [self._copy_file_range, self._sendfile, self._plain]

    def copy(self, source: int, offset: int, count: int) -> None:
        """Copies `count` bytes of `source` from `offset` to the output."""
        while count > 0:
            try:
                done = self._ways[0](source, offset, count)
            except OSError as err:
                if err.errno not in _UNCOPYABLE or len(self._ways) == 1:
                    raise
                del self._ways[0]  # this output takes no such copy: the next way, from here on
                continue
            if done == 0:
                raise DataLossError("a block is shorter than the file's record of it", grpc.StatusCode.DATA_LOSS)
            offset += done
            count -= done

    def _copy_file_range(self, source: int, offset: int, count: int) -> int:
        return os.copy_file_range(source, self._out, count, offset)

    def _sendfile(self, source: int, offset: int, count: int) -> int:
        return os.sendfile(self._out, source, offset, min(count, 1 << 30))

    def _plain(self, source: int, offset: int, count: int) -> int:
        data = os.pread(source, min(count, 4 << 20), offset)
        reading.write_all(self._out, memoryview(data))
        return len(data)
