"""The connection shared by the client's service mixins, and error translation.

Every call first makes sure the channel is connected, for at most
`connect_timeout` seconds (a pachd that is down, or an address that never
answers, fails fast with an error naming the address). Calls that wait (flush,
blocking list-commit, blocking inspect-job) are idempotent: when the connection
is lost under them (pachd restarted), they reconnect and wait again, for at
most `reconnect_timeout` seconds.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar

import grpc
from grpc import _common

from pachyderm_client._lazy import lazy_module
from pachyderm_client.errors import ORIGIN_KEY, PachydermError, UnavailableError, from_rpc_error

if TYPE_CHECKING:
    from pachyderm_client.proto import pfs_admin_pb2_grpc
else:  # loaded by the first call (see _lazy.py)
    pfs_admin_pb2_grpc = lazy_module("pachyderm_client.proto.pfs_admin_pb2_grpc")

P = ParamSpec("P")
T = TypeVar("T")
C = TypeVar("C", bound="Connection")

MAX_MESSAGE = 64 * 1024 * 1024
CHUNK = 1024 * 1024
"""Bytes per streamed put-file message."""
CONNECT_SECONDS = 5.0
RECONNECT_SECONDS = 60.0
START_HINT = ("ADDRESS=host:port picks another pachd; start one here with `python -m pachd.main` "
              "(see the README's tutorial), or deploy one with `pachctl deploy`")


def channel(address: str, *, tls_ca: bytes | None = None) -> grpc.Channel:
    """A channel to pachd at `address` (TLS when given the CA certificate to trust), with 64 MiB messages."""
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.initial_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000),
        # Connections of its own: with grpc's process-wide pool, a new client to a pachd that just came
        # back shared another client's connection still waiting out its backoff, and was refused at once.
        ("grpc.use_local_subchannel_pool", 1),
        # Socket reads of 4 MiB (1-8 MiB as gRPC adapts them), not its default 8 KiB start: a get-file
        # of 1 GiB spent 0.2 s less of system time in reads (bench/readback_bench.py).
        ("grpc.experimental.tcp_read_chunk_size", 4 * 1024 * 1024),
        ("grpc.experimental.tcp_min_read_chunk_size", 1024 * 1024),
        ("grpc.experimental.tcp_max_read_chunk_size", 8 * 1024 * 1024),
    ]
    if tls_ca is not None:
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=tls_ca), options)
    return grpc.insecure_channel(address, options)


def _lost_connection(err: grpc.RpcError) -> bool:
    """The call failed in transport (pachd gone or restarting), not with an error pachd reported."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN):
        return False
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    return not any(item.key == ORIGIN_KEY for item in trailing or ())


class _Bearer(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,  # type: ignore[type-arg]
              grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):  # type: ignore[type-arg]
    """Adds `authorization: Bearer <token>` to every call."""

    def __init__(self, token: str) -> None:
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        return details._replace(metadata=[*(details.metadata or ()), self._header])

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


class Connection:
    """Holds the channel; the service mixins build their stubs on it.

    `auth_token` is sent with every call as a bearer token: pachd's admin
    token (--auth-token-file), or a pod's job credential."""

    def __init__(self, address: str, *, tls_ca: bytes | None = None, metadata: tuple[tuple[str, str], ...] = (),
                 auth_token: str | None = None, connect_timeout: float = CONNECT_SECONDS,
                 reconnect_timeout: float = RECONNECT_SECONDS) -> None:
        """A channel to `address`; nothing is sent until the first call (see the module's docstring)."""
        self.address = address
        self.auth_token = auth_token
        self._raw_channel = channel(address, tls_ca=tls_ca)
        self._channel: grpc.Channel = self._raw_channel
        if auth_token:
            self._channel = grpc.intercept_channel(self._raw_channel, _Bearer(auth_token))
        self.metadata = metadata
        self.connect_timeout = connect_timeout
        self.reconnect_timeout = reconnect_timeout
        self._connected = False

    @functools.cached_property
    def _admin(self) -> pfs_admin_pb2_grpc.AdminStub:
        """Our own administration service, for AdminClient and for PfsClient's fast path."""
        return pfs_admin_pb2_grpc.AdminStub(self._channel)

    @property
    def channel(self) -> grpc.Channel:
        """The channel the client's calls go over (with its token), for stubs of services it does not wrap."""
        return self._channel

    def close(self) -> None:
        """Closes the channel; calls after this fail."""
        self._raw_channel.close()

    def __enter__(self) -> Self:
        """The client itself; the channel closes at the end of the block."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Closes the channel."""
        self.close()

    def _connect(self, timeout: float, *, lost: bool = False) -> None:
        """Waits until the channel is connected, for at most `timeout` seconds, or else raises
        UnavailableError naming the address. A first connection fails at once when refused;
        a lost one (pachd restarting) is tried again until the deadline."""
        # A lost connection is waited for until READY, whatever states it passes through (a stale
        # READY, refusals while pachd restarts): resumable() calls again, within its own deadline.
        state = _settled_state(self._raw_channel, timeout, through_failures=lost)
        if state is grpc.ChannelConnectivity.READY:
            self._connected = True
            return
        if lost:
            raise UnavailableError(f"lost pachd at {self.address}; it did not come back within {timeout:.0f}s",
                                   hint=START_HINT)
        refused = state is grpc.ChannelConnectivity.TRANSIENT_FAILURE
        reason = "nothing answers there" if refused else f"no answer within {timeout:g}s"
        raise UnavailableError(f"cannot reach pachd at {self.address}: {reason}", hint=START_HINT)

    def _unavailable(self, err: grpc.RpcError) -> PachydermError:
        details = err.details() if hasattr(err, "details") else str(err)
        return UnavailableError(f"lost the connection to pachd at {self.address} ({details})", hint=START_HINT)


def _settled_state(raw: grpc.Channel, timeout: float, *, through_failures: bool = False) -> grpc.ChannelConnectivity:
    """The channel's state once it is READY or TRANSIENT_FAILURE, or when `timeout` ends;
    `through_failures`: once it is READY (it keeps being asked to connect), or at the end.

    Watched here, in the calling thread, rather than through grpc's subscribe() (or
    channel_ready_future(), which subscribes): that starts a thread which keeps watching
    in 0.2 s steps after its subscriber left, and closing the channel waits for its last
    step, so every command's end took 0.2 s longer."""
    core = raw._channel  # type: ignore[attr-defined]  # the C core's channel (grpcio is pinned)
    to_state = _common.CYGRPC_CONNECTIVITY_STATE_TO_CHANNEL_CONNECTIVITY
    settled = (grpc.ChannelConnectivity.READY,) if through_failures else (
        grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE)
    deadline = time.time() + max(timeout, 0.0)
    state = core.check_connectivity_state(True)
    while to_state[state] not in settled and time.time() < deadline:
        core.watch_connectivity_state(state, deadline)  # returns once the state is another, or at the deadline
        state = core.check_connectivity_state(through_failures)  # an idle channel is asked again to connect
    return to_state[state]


def translated(fn: Callable[Concatenate[C, P], T]) -> Callable[Concatenate[C, P], T]:
    """A call of a Connection: connects first, and turns grpc.RpcError into the client's typed errors."""

    @functools.wraps(fn)
    def call(self: C, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self._connected:
            self._connect(self.connect_timeout)
        try:
            return fn(self, *args, **kwargs)
        except grpc.RpcError as err:
            raise (self._unavailable(err) if _lost_connection(err) else from_rpc_error(err)) from None

    return call


def resumable(fn: Callable[Concatenate[C, P], T]) -> Callable[Concatenate[C, P], T]:
    """Like `translated`, for idempotent waiting calls: a lost connection is re-made and the call made again."""

    @functools.wraps(fn)
    def call(self: C, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not self._connected:
            self._connect(self.connect_timeout)
        deadline: float | None = None
        while True:
            try:
                return fn(self, *args, **kwargs)
            except grpc.RpcError as err:
                if not _lost_connection(err):
                    raise from_rpc_error(err) from None
                deadline = deadline or time.monotonic() + self.reconnect_timeout
                self._connect(deadline - time.monotonic(), lost=True)

    return call


def stream(responses: Iterable[Any]) -> Iterator[Any]:
    """A response stream whose errors are the client's typed errors."""
    try:
        yield from responses
    except grpc.RpcError as err:
        raise from_rpc_error(err) from None
