"""Reading a file's bytes off a GetFile stream into an output, its replies not copied.

A GetFile reply is a BytesValue of up to 2 MiB: parsing it into a message and taking its
value copies the bytes twice, so value() takes them straight out of the reply's wire bytes,
and write() hands them on (to a descriptor: write_all()).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from google.protobuf import wrappers_pb2


def value(reply: bytes) -> memoryview:
    """The `value` of a BytesValue's wire bytes, not copied out of them: what pachd sends is a
    tag, a length and the bytes; any other encoding of it is parsed."""
    view = memoryview(reply)
    if len(view) > 1 and view[0] == 0x0A:  # field 1, length-delimited, alone
        size, at, shift = 0, 1, 0
        while at < len(view) and shift < 64:
            byte = view[at]
            at += 1
            size |= (byte & 0x7F) << shift
            if byte < 0x80:
                if at + size == len(view):
                    return view[at:]
                break
            shift += 7
    return memoryview(wrappers_pb2.BytesValue.FromString(reply).value)


def reuse_message_memory() -> None:
    """Lets this process's malloc keep freed messages' memory for the next ones (glibc's mallopt):
    by default each 2 MiB reply goes back to the kernel when freed and the next one is faulted in
    afresh, zeroed page by page, 0.15-0.2 s of system time per GiB read. For a process that reads
    a large file and ends (pachctl get-file); elsewhere (musl, macOS) nothing changes."""
    from pachyderm_client import _glibc  # only here: no other command pays for ctypes

    libc = _glibc.c_library()
    if libc is not None:
        libc.mallopt(_glibc.M_MMAP_THRESHOLD, 64 * 1024 * 1024)  # below this, from the heap, reused
        libc.mallopt(_glibc.M_TRIM_THRESHOLD, 256 * 1024 * 1024)  # freed memory the heap keeps before it shrinks


def write(values: Iterable[memoryview], write: Callable[[memoryview], object],
          progress: Callable[[int], None] | None = None) -> int:
    """Hands a stream's values to `write` (which writes all it is given) in order; returns how many bytes."""
    written = 0
    for data in values:
        write(data)
        written += len(data)
        if progress is not None:
            progress(len(data))
    return written


def write_all(fd: int, data: memoryview) -> None:
    """Writes all of `data` to the descriptor `fd` (a pipe may take it in parts)."""
    while data:
        data = data[os.write(fd, data):]
