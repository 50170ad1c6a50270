"""The connection shared by the client's service mixins, and error translation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

import grpc

from pachctl.client.errors import from_rpc_error

P = ParamSpec("P")
T = TypeVar("T")

MAX_MESSAGE = 64 * 1024 * 1024
CHUNK = 1024 * 1024
"""Bytes per streamed put-file message."""


def channel(address: str, *, tls_ca: bytes | None = None) -> grpc.Channel:
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        ("grpc.max_send_message_length", MAX_MESSAGE),
    ]
    if tls_ca is not None:
        return grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=tls_ca), options)
    return grpc.insecure_channel(address, options)


def translated(fn: Callable[P, T]) -> Callable[P, T]:
    """Turns grpc.RpcError raised by `fn` into the client's typed errors."""

    @functools.wraps(fn)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as err:
            raise from_rpc_error(err) from None

    return call


def stream(responses: Iterable[Any]) -> Iterator[Any]:
    """A response stream whose errors are the client's typed errors."""
    try:
        yield from responses
    except grpc.RpcError as err:
        raise from_rpc_error(err) from None


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
                 auth_token: str | None = None) -> None:
        self.address = address
        self._raw_channel = channel(address, tls_ca=tls_ca)
        self._channel: grpc.Channel = self._raw_channel
        if auth_token:
            self._channel = grpc.intercept_channel(self._raw_channel, _Bearer(auth_token))
        self.metadata = metadata

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
