"""Fetching put-file data from a URL (http and https only), safely for pachd.

A client names the URL, pachd fetches it: so by default pachd refuses any
address a client could not reach itself but pachd can (loopback, private,
link-local, cloud metadata, multicast, reserved), checked after DNS
resolution and again for every redirect, and connects to the very address it
checked (no second lookup to rebind). Only http(s) redirects are followed, at
most MAX_REDIRECTS. Each connect and read has a timeout, the whole body a
size limit, and errors never carry the body of an answer.

Fetches run on a thread pool of their own (POOL_SIZE threads): a URL that
never answers holds one of those threads for at most its timeouts, and never
a thread that file and block I/O need.
"""

from __future__ import annotations

import asyncio
import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pachd.errors import InvalidArgument, NotFound, PermissionDenied, TooLarge, Unavailable

CHUNK = 1024 * 1024
CONNECT_TIMEOUT = 10.0  # seconds to resolve and connect
READ_TIMEOUT = 30.0  # seconds any one read may wait
MAX_BYTES = 16 * 1024**3  # one URL's body
MAX_REDIRECTS = 5
POOL_SIZE = 16
_REDIRECTS = (301, 302, 303, 307, 308)
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class UrlPolicy:
    """Which hosts put-file may fetch from although their addresses are not public."""

    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    connect_timeout: float = CONNECT_TIMEOUT
    read_timeout: float = READ_TIMEOUT
    max_bytes: int = MAX_BYTES

    @classmethod
    def from_allow_list(cls, entries: Sequence[str]) -> UrlPolicy:
        """`entries` are host names, addresses or networks in CIDR form."""
        hosts, networks = set(), []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower())
        return cls(allowed_hosts=frozenset(hosts), allowed_networks=tuple(networks))

    def permits(self, host: str, address: str) -> bool:
        if host.lower() in self.allowed_hosts:
            return True
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in network for network in self.allowed_networks):
            return True
        return ip.is_global and not ip.is_multicast


def _refused(url: str) -> PermissionDenied:
    return PermissionDenied(f"cannot put-file from {url!r}: pachd does not fetch from loopback, private or "
                            "link-local addresses (start pachd with --url-allow to permit chosen hosts)")


class _Body:
    """One open response: read in chunks, up to the policy's size."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.connection = connection
        self.response = response
        self.read = 0

    def close(self) -> None:
        self.connection.close()


class Fetcher:
    """Fetches URLs for put-file on a bounded pool of its own; close() on shutdown."""

    def __init__(self, policy: UrlPolicy | None = None, *, pool_size: int = POOL_SIZE) -> None:
        self.policy = policy or UrlPolicy()
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="url-fetch")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _run(self, fn: object, *args: object) -> object:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)  # type: ignore[arg-type]

    async def fetch(self, url: str) -> AsyncIterator[bytes]:
        """The body of `url`, in chunks."""
        body = await self._run(self._open, url)
        assert isinstance(body, _Body)
        try:
            while True:
                chunk = await self._run(self._read, url, body)
                assert isinstance(chunk, bytes)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def _open(self, url: str) -> _Body:
        for _ in range(MAX_REDIRECTS + 1):
            parts = _parse(url)
            connection = self._connect(url, parts)
            try:
                connection.request("GET", parts.path_and_query, headers={"Host": parts.netloc, "Accept": "*/*"})
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as err:
                connection.close()
                raise Unavailable(f"cannot fetch {url!r}: {_describe(err)}") from err
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                connection.close()
                if not location:
                    raise Unavailable(f"{url!r} answered {response.status} without a Location")
                url = urllib.parse.urljoin(url, location)
                continue
            if response.status != 200:
                connection.close()
                if response.status in (404, 410):
                    raise NotFound(f"{url!r} answered {response.status}: nothing to put there")
                raise Unavailable(f"{url!r} answered {response.status} {response.reason}")
            return _Body(connection, response)
        raise Unavailable(f"cannot fetch {url!r}: more than {MAX_REDIRECTS} redirects")

    def _connect(self, url: str, parts: _Parts) -> http.client.HTTPConnection:
        try:
            infos = socket.getaddrinfo(parts.host, parts.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as err:
            raise Unavailable(f"cannot fetch {url!r}: {_describe(err)}") from err
        addresses = [str(info[4][0]) for info in infos]
        if not addresses or not all(self.policy.permits(parts.host, a) for a in addresses):
            raise _refused(url)
        last: BaseException | None = None
        for address in addresses:
            try:
                sock = socket.create_connection((address, parts.port), timeout=self.policy.connect_timeout)
            except OSError as err:
                last = err
                continue
            sock.settimeout(self.policy.read_timeout)
            return _pinned(parts, sock)
        raise Unavailable(f"cannot fetch {url!r}: {_describe(last)}")

    def _read(self, url: str, body: _Body) -> bytes:
        try:
            chunk = body.response.read(CHUNK)
        except (OSError, http.client.HTTPException) as err:  # e.g. IncompleteRead, a read timeout
            raise Unavailable(f"fetching {url!r} failed midway: {_describe(err)}") from err
        body.read += len(chunk)
        if body.read > self.policy.max_bytes:
            raise TooLarge(f"{url!r} is larger than {self.policy.max_bytes} bytes, the most put-file fetches")
        return chunk


@dataclass(frozen=True, slots=True)
class _Parts:
    scheme: str
    host: str
    port: int
    netloc: str
    path_and_query: str


def _parse(url: str) -> _Parts:
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError as err:  # e.g. an unclosed IPv6 bracket, a port out of range
        raise InvalidArgument(f"cannot put-file from {url!r}: it is not a valid URL ({err})") from err
    if parsed.scheme not in ("http", "https"):
        raise InvalidArgument(f"cannot put-file from {url!r}: only http and https URLs are fetched")
    if not parsed.hostname or any(c in url for c in "\r\n\0 "):
        raise InvalidArgument(f"cannot put-file from {url!r}: it is not a valid URL")
    path = parsed.path or "/"
    return _Parts(parsed.scheme, parsed.hostname, port or (443 if parsed.scheme == "https" else 80),
                  parsed.netloc.rsplit("@", 1)[-1], path + (f"?{parsed.query}" if parsed.query else ""))


def _pinned(parts: _Parts, sock: socket.socket) -> http.client.HTTPConnection:
    """A connection over `sock`, already connected to the address that was checked."""
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(parts.host, parts.port, context=context)
        connection.sock = context.wrap_socket(sock, server_hostname=parts.host)
    else:
        connection = http.client.HTTPConnection(parts.host, parts.port)
        connection.sock = sock
    return connection


def _describe(err: BaseException | None) -> str:
    """What went wrong, without anything the far side sent."""
    if err is None:
        return "no address to connect to"
    if isinstance(err, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(err, ssl.SSLError):
        return f"TLS failed ({err.reason})"
    if isinstance(err, OSError):
        return err.strerror or type(err).__name__
    return type(err).__name__
