"""Reading a file's bytes off GetFile streams into a descriptor: its replies decoded without
a copy, and, where the output is a regular file, ranges of it over several streams at once.

One Python gRPC stream is handled by one thread on each side. With PACH_GET_STREAMS=N
(config.get_streams), a file of RANGED_FROM bytes or more goes over N streams on the same
channel, each asking for its own range (GetFileRequest's offset_bytes and size_bytes, as
v1.2.3 serves them: bytes of the file, counted across its blocks) and writing it in place
with pwrite. Only a regular file takes writes at any place; a pipe, a terminal or a file
opened to append gets the one stream, in order. The default is one stream: on two cores,
where pachd and pachctl each keep one busy, more streams only cost more CPU
(bench/readback_bench.py); they are for machines with cores to spare.

Every range but the last is asked for its exact size, and must bring exactly that many
bytes; the last reads to the file's end, so the output ends where the file does even if
the file grew since its size was asked. A failure on any stream cancels the others and
is raised, so the caller never takes a short output for a whole one.
"""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from collections.abc import Callable, Iterable

import grpc
from google.protobuf import wrappers_pb2

from pachyderm_client.errors import DataLossError

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)

RANGED_FROM = 64 * 1024 * 1024
"""Files smaller than this go over one stream: a second would save less than it costs."""

Stream = Callable[[int, int], Iterable[memoryview]]
"""Opens a GetFile stream of `size` bytes from `offset` (0: to the end); the values as they come.
The iterable has cancel() when it is a gRPC call."""


def value(reply: bytes) -> memoryview:
    """The `value` of a BytesValue's wire bytes, not copied out of them: a GetFile reply is a
    tag, a length and the bytes, and parsing it into a message would copy them twice."""
    view = memoryview(reply)
    if len(view) > 1 and view[0] == 0x0A:  # field 1, length-delimited, alone: what pachd sends
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
    return memoryview(wrappers_pb2.BytesValue.FromString(reply).value)  # any other encoding of it


def reuse_message_memory() -> None:
    """Lets this process's malloc keep freed messages' memory for the next ones (glibc's mallopt):
    by default each 2 MiB reply goes back to the kernel when freed and the next one is faulted in
    afresh, zeroed page by page, 0.15-0.2 s of system time per GiB read. For a process that reads
    a large file and ends (pachctl get-file); elsewhere (musl, macOS) nothing changes."""
    import ctypes  # only here: no other command pays for it

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 64 * 1024 * 1024)  # below this, from the heap, reused
    mallopt(_M_TRIM_THRESHOLD, 256 * 1024 * 1024)  # freed memory the heap keeps before it shrinks


def position(fd: int) -> int | None:
    """Where writes to `fd` would land if it is a regular file that takes writes at any place
    (not opened to append); None for anything else (a pipe, a terminal, a socket)."""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode) or fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND:
            return None
        return os.lseek(fd, 0, os.SEEK_CUR)
    except OSError:
        return None


def plan(offset: int, size: int, streams: int, *, to_end: bool) -> list[tuple[int, int]]:
    """(offset, size) of each stream's range over `size` bytes from `offset`: `streams` ranges
    of about equal size, none under RANGED_FROM / 4; with `to_end`, the last one's size is 0
    (to the end of the file, wherever that is by then)."""
    count = max(1, min(streams, size // (RANGED_FROM // 4)))
    step = size // count
    out = [(offset + n * step, step) for n in range(count)]
    last_at = out[-1][0]
    out[-1] = (last_at, 0 if to_end else offset + size - last_at)
    return out


def write_all(fd: int, data: memoryview, at: int | None) -> None:
    """Writes all of `data` to `fd`: at `at` (pwrite), or at its position when None."""
    while data:
        done = os.write(fd, data) if at is None else os.pwrite(fd, data, at)
        data = data[done:]
        if at is not None:
            at += done


def write(values: Iterable[memoryview], fd: int, progress: Callable[[int], None] | None = None) -> int:
    """Writes one stream's values to `fd` in order; returns how many bytes."""
    return _one(values, fd, None, None, progress)


def copy(open_stream: Stream, fd: int, offset: int, size: int, streams: int, *, to_end: bool,
         progress: Callable[[int], None] | None = None) -> int:
    """Writes `size` bytes of the file from `offset` (with `to_end`, on to the file's end) to the
    regular file `fd` (see position()), in ranges over `streams` streams at once; returns how
    many. The descriptor's position ends after them, as if they were written in order."""
    start = position(fd)
    if start is None:
        raise ValueError("ranges are written only to a regular file not opened to append")
    ranges = plan(offset, size, streams, to_end=to_end)
    calls = [open_stream(at, count) for at, count in ranges]
    counts = [0] * len(ranges)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def read(index: int) -> None:
        at, count = ranges[index]
        try:
            counts[index] = _one(calls[index], fd, start + at - offset, count or None, _locked(progress, lock))
        except BaseException as err:  # noqa: BLE001  (raised in the calling thread below)
            with lock:
                failures.append(err)
            for call in calls:  # the other streams stop too: nothing more is written
                _cancel(call)

    threads = [threading.Thread(target=read, args=(n,), name=f"get-file-range-{n}", daemon=True)
               for n in range(1, len(ranges))]
    for thread in threads:
        thread.start()
    read(0)
    for thread in threads:
        thread.join()
    if failures:
        raise _first(failures)
    written = sum(counts)
    os.lseek(fd, start + written, os.SEEK_SET)
    return written


def _one(values: Iterable[memoryview], fd: int, at: int | None, expected: int | None,
         progress: Callable[[int], None] | None) -> int:
    """Writes one stream's values to `fd` (at `at`, or in order); its count, which must be
    `expected` when given."""
    written = 0
    for data in values:
        write_all(fd, data, None if at is None else at + written)
        written += len(data)
        if progress is not None:
            progress(len(data))
    if expected is not None and written != expected:
        raise DataLossError(f"a range of the file brought {written} bytes where {expected} were asked for "
                            "(the file changed while it was read?)", grpc.StatusCode.DATA_LOSS)
    return written


def _locked(progress: Callable[[int], None] | None, lock: threading.Lock) -> Callable[[int], None] | None:
    if progress is None:
        return None

    def report(count: int) -> None:
        with lock:
            progress(count)

    return report


def _cancel(call: object) -> None:
    cancel = getattr(call, "cancel", None)
    if cancel is not None:
        cancel()


def _first(failures: list[BaseException]) -> BaseException:
    """The failure that stopped the copy, rather than the cancellations it caused."""
    for failure in failures:
        if not (isinstance(failure, grpc.RpcError) and failure.code() is grpc.StatusCode.CANCELLED):
            return failure
    return failures[0]
