"""The references a put-file is measured against: a bare gRPC stream of a file and its SHA-512.

`python -m bench.grpc_stream serve PORT` serves one client-streaming method
(grpc.aio, as pachd) that only takes each message's bytes; `send ADDRESS FILE`
streams the file to it in messages of pachctl's size; `sha512 FILE` reads and
hashes the file as pachd hashes blocks. The other way, as get-file: the server's
server-streaming method sends the file it is asked for (read in pieces as pachd
reads blocks, each a bytes message), and `receive ADDRESS FILE OUT` writes the
messages to OUT. Each runs in its own process, so its CPU seconds are measured
as pachd's and pachctl's are.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from collections.abc import AsyncIterator, Iterator

import grpc

from pachyderm_client._base import CHUNK, MAX_MESSAGE, channel

METHOD = "/bench.Stream/Put"
GET_METHOD = "/bench.Stream/Get"
HASHED = 8 * 1024 * 1024
SENT = 2 * 1024 * 1024
"""Bytes per message of Get: what pachd reads from a block at a time (pachd/pfs/blocks.py)."""


async def serve(port: int) -> None:
    async def put(requests: AsyncIterator[bytes], context: object) -> bytes:
        received = 0
        async for data in requests:
            received += len(data)
        return str(received).encode()

    async def get(path: bytes, context: object) -> AsyncIterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, SENT):
                yield chunk

    handler = grpc.method_handlers_generic_handler("bench.Stream", {
        "Put": grpc.stream_unary_rpc_method_handler(put),  # type: ignore[arg-type]
        "Get": grpc.unary_stream_rpc_method_handler(get),  # type: ignore[arg-type]
    })
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                      ("grpc.max_send_message_length", MAX_MESSAGE)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("serving", flush=True)
    await server.wait_for_termination()


def send(address: str, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    with grpc.insecure_channel(address, [("grpc.max_send_message_length", MAX_MESSAGE)]) as channel:
        put = channel.stream_unary(METHOD)
        put(chunks(), wait_for_ready=True)


def receive(address: str, path: str, out: str) -> None:
    with channel(address) as connection, open(out, "wb") as handle:  # pachctl's channel and its options
        get = connection.unary_stream(GET_METHOD)
        for chunk in get(os.fsencode(os.path.abspath(path)), wait_for_ready=True):
            handle.write(chunk)


def sha512(path: str) -> None:
    digest = hashlib.sha512()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASHED):
            digest.update(chunk)
    print(digest.hexdigest())


if __name__ == "__main__":
    verb, *args = sys.argv[1:]
    if verb == "serve":
        asyncio.run(serve(int(args[0])))
    elif verb == "send":
        send(args[0], args[1])
    elif verb == "receive":
        receive(args[0], args[1], args[2])
    else:
        sha512(args[0])
