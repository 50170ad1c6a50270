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


class Connection:
    """Holds the channel; the service mixins build their stubs on it."""

    def __init__(self, address: str, *, tls_ca: bytes | None = None, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.address = address
        self._channel = channel(address, tls_ca=tls_ca)
        self.metadata = metadata

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
