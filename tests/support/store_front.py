"""A loopback HTTP front for a test object store, to cut it off or throttle it on demand.

Clients talk to the front, which forwards each request to the store behind it
(moto's S3 server, Azurite) and streams the answer back. `cut()` makes the
store unreachable as a network outage would (open connections are dropped,
new ones refused) while the store keeps its objects, which moto, keeping
them in memory only, could not across a restart; `restore()` ends the
outage. `throttle(n, reply)` answers the next `n` requests itself with a
throttling reply such as S3's 503 SlowDown, as a busy store does.
`break_upload(after)` passes the first `after` bytes of the next request body
to the store, then drops both connections: an upload that dies midway.
"""

from __future__ import annotations

import http.client
import http.server
import socket
import threading
from dataclasses import dataclass

from tests.support.local_pods import serve_http, stop_http
from tests.support.ports import free_port

_CHUNK = 256 << 10
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass(frozen=True, slots=True)
class Throttle:
    """The reply a throttled request gets."""

    status: int
    body: bytes
    content_type: str = "application/xml"


class StoreFront:
    """Forwards 127.0.0.1:`port` to the store at 127.0.0.1:`upstream_port`."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.requests = 0  # forwarded or throttled, since start
        self.throttled = 0
        self._lock = threading.Lock()
        self._pending: list[Throttle] = []
        self._break_after: int | None = None
        self.broken = 0
        self._server: http.server.ThreadingHTTPServer | None = None
        self._sockets: set[socket.socket] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StoreFront:
        front = self

        class Handler(_Forwarder):
            pass

        Handler.front = front
        self._server = serve_http(self.port, Handler, "store-front")
        return self

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        if self._server is None:
            return
        stop_http(self._server)
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._sockets.clear()
        self._server = None

    def restore(self) -> None:
        if self._server is None:
            self.start()

    stop = cut

    def throttle(self, count: int, reply: Throttle) -> None:
        with self._lock:
            self._pending += [reply] * count

    def break_upload(self, after: int) -> None:
        with self._lock:
            self._break_after = after

    def _take_break(self, length: int) -> int | None:
        with self._lock:
            after = self._break_after
            if after is None or length <= after:
                return None
            self._break_after = None
            self.broken += 1
            return after

    def _take_throttle(self) -> Throttle | None:
        with self._lock:
            self.requests += 1
            if self._pending:
                self.throttled += 1
                return self._pending.pop(0)
            return None

    def _track(self, sock: socket.socket, keep: bool) -> None:
        with self._lock:
            if keep:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)


class _Forwarder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and 100-continue for large uploads
    front: StoreFront

    def setup(self) -> None:
        super().setup()
        self.front._track(self.connection, True)

    def finish(self) -> None:
        self.front._track(self.connection, False)
        super().finish()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        return None

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:
            self.close_connection = True

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        throttled = self.front._take_throttle()
        if throttled is not None:
            self.rfile.read(length)
            self._reply(throttled.status, throttled.body, throttled.content_type)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", self.front.upstream_port, timeout=120)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in _HOP_BY_HOP | {"expect"}:
                    upstream.putheader(key, value)
            upstream.endheaders()
            if not self._send_body(upstream, length):
                return
            answer = upstream.getresponse()
            payload = answer.read()
            self.send_response_only(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP | {"content-length"}:
                    self.send_header(key, value)
            # a HEAD answer's Content-Length is the object's size, not the (empty) body's
            length_sent = answer.getheader("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length_sent or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            upstream.close()

    def _send_body(self, upstream: http.client.HTTPConnection, length: int) -> bool:
        """Streams the request body on; False if the upload was broken on purpose."""
        cut = self.front._take_break(length)
        sent = 0
        while sent < length:
            piece = self.rfile.read(min(_CHUNK, length - sent, (cut - sent) if cut is not None else length))
            if not piece:
                raise ConnectionError("the client went away mid-body")
            upstream.send(piece)
            sent += len(piece)
            if cut is not None and sent >= cut:
                upstream.close()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return False
        return True

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward
