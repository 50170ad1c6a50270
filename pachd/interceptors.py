"""The one place where errors become gRPC statuses, and where RPCs are logged;
the codecs of our own some methods use (WireCodecs); and the calls after which
the C allocator's freed memory goes back to the system (ReleaseFreed).

Every handler (unary or streaming, either direction) is wrapped: a PachError
aborts the call with its own status code and message, and its hint (if any) in
the trailing metadata under HINT_KEY (and ORIGIN, marking it as pachd's own);
anything unexpected is
logged with its traceback and reported as INTERNAL. Each call is logged at
debug (method, peer, code, duration), or at warning when it is slow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias

import grpc

from pachd import allocator
from pachd.errors import HINT_KEY, ORIGIN, PachError

logger = logging.getLogger(__name__)

SLOW_SECONDS = 10.0
# Calls that are meant to wait; never "slow".
_BLOCKING = ("FlushCommit", "ListCommit", "InspectJob", "GetLogs", "FinishCommit", "StartPipeline", "StopPipeline")


def pach_error(err: BaseException) -> PachError | None:
    """The PachError behind `err`, looking inside exception groups (TaskGroups raise those)."""
    if isinstance(err, PachError):
        return err
    if isinstance(err, BaseExceptionGroup):
        for inner in err.exceptions:
            found = pach_error(inner)
            if found is not None:
                return found
    return None


class _Call:
    """Logs one call and turns its failure into an abort."""

    def __init__(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        self.method = method
        self.context = context
        self.start = time.monotonic()

    async def fail(self, err: BaseException) -> None:
        pach = pach_error(err)
        if pach is not None:
            self.log(pach.code)
            trailing = (ORIGIN, (HINT_KEY, pach.hint.encode())) if pach.hint else (ORIGIN,)
            await self.context.abort(pach.code, pach.message, trailing_metadata=trailing)
        logger.exception("%s failed unexpectedly", self.method)
        self.log(grpc.StatusCode.INTERNAL)
        await self.context.abort(grpc.StatusCode.INTERNAL, f"internal error in {self.method}: {err!r}",
                                 trailing_metadata=(ORIGIN,))

    def log(self, code: grpc.StatusCode) -> None:
        elapsed = time.monotonic() - self.start
        slow = elapsed > SLOW_SECONDS and not self.method.endswith(_BLOCKING)
        logger.log(
            logging.WARNING if slow else logging.DEBUG,
            "%s from %s: %s in %.3fs", self.method, self.context.peer(), code.name, elapsed,
        )


def _wrap_unary(method: str, handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        tracked = _Call(method, context)
        try:
            response = await handler(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as err:
            await tracked.fail(err)
            raise
        tracked.log(grpc.StatusCode.OK)
        return response

    return call


def _wrap_stream(method: str, handler: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        tracked = _Call(method, context)
        try:
            async for response in handler(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as err:
            await tracked.fail(err)
            raise
        tracked.log(grpc.StatusCode.OK)

    return call


Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


def rewrap(handler: Handler, wrap: Callable[[Callable[..., Any]], Callable[..., Any]], *,
           request_deserializer: Callable[[bytes], Any] | None = None,
           response_serializer: Callable[[Any], bytes] | None = None) -> Handler:
    """The handler of the same kind, its behaviour passed through `wrap`, and its codec the
    same but for the parts given."""
    codec = {
        "request_deserializer": request_deserializer or handler.request_deserializer,
        "response_serializer": response_serializer or handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(wrap(handler.unary_unary), **codec)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(wrap(handler.stream_unary), **codec)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(wrap(handler.unary_stream), **codec)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(wrap(handler.stream_stream), **codec)
    return handler


class ErrorInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        full = handler_call_details.method
        # grpc's stubs type streaming handlers as sync iterators; under grpc.aio they are async.
        if handler.unary_stream or handler.stream_stream:
            return rewrap(handler, lambda fn: _wrap_stream(full, fn))
        return rewrap(handler, lambda fn: _wrap_unary(full, fn))


def _passing_bytes(serialize: Callable[[Any], bytes] | None) -> Callable[[Any], bytes]:
    def serialized(reply: Any) -> bytes:
        if isinstance(reply, bytes):
            return reply
        assert serialize is not None
        return serialize(reply)

    return serialized


class WireCodecs(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Codecs of our own for named methods, in place of the generated protobuf ones.

    - `decoders`: a method's requests are what its decoder makes of the received
      bytes (PutFile: its data not copied out of them, see pachd/pfs/wire.py).
    - `pre_encoded`: a method's servicer may answer with the reply's wire bytes, sent
      as they are (ListFile: a listing of 100,000 entries is written as wire bytes
      once, rather than parsed into a message for gRPC to serialize again, 0.1 s of CPU).
    """

    def __init__(self, *, decoders: Mapping[str, Callable[[bytes], object]], pre_encoded: Iterable[str]) -> None:
        self._decoders = dict(decoders)
        self._pre_encoded = frozenset(pre_encoded)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        decode = self._decoders.get(method)
        pre_encoded = method in self._pre_encoded
        if handler is None or (decode is None and not pre_encoded):
            return handler
        return rewrap(handler, lambda behaviour: behaviour, request_deserializer=decode,
                      response_serializer=_passing_bytes(handler.response_serializer) if pre_encoded else None)


class ReleaseFreed(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """When one of `methods` ends, however it ends, the memory freed in it goes back to the system
    (allocator.release_freed): calls that receive many bytes (PutFile, PutBlock, PutFileRefs)
    leave pachd holding what is live, not the most any call ever held."""

    def __init__(self, methods: Iterable[str]) -> None:
        self._methods = frozenset(methods)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method not in self._methods:
            return handler
        if handler.unary_stream or handler.stream_stream:
            return rewrap(handler, _releasing_stream)
        return rewrap(handler, _releasing_unary)


def _releasing_unary(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await handler(request, context)
        finally:
            allocator.release_freed()

    return call


def _releasing_stream(handler: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for response in handler(request, context):
                yield response
        finally:
            allocator.release_freed()

    return call
