"""The C library's calls Python's os module lacks, through ctypes: glibc's allocator controls
(mallopt, malloc_trim) for the processes that move large messages (pachd, pachctl get-file), and
sync_file_range for pachd's block writes. None, or nothing done, where the C library has not
got them (musl's allocator, macOS), which then keeps its defaults."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt's parameters (malloc.h)
SYNC_FILE_RANGE_WRITE = 2  # sync_file_range: start writing the range's dirty pages, wait for none (fcntl.h)

_libc: ctypes.CDLL | None = None


def c_library() -> ctypes.CDLL | None:
    """The process's C library if it has glibc's mallopt and malloc_trim, else None."""
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(None)
            libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            libc.mallopt.restype = ctypes.c_int
            libc.malloc_trim.argtypes = [ctypes.c_size_t]
            libc.malloc_trim.restype = ctypes.c_int
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def start_writeback(fd: int) -> None:
    """Starts writing the file's dirty pages to its disk, without waiting for them (Linux's
    sync_file_range; nothing elsewhere). Not durability: only an fsync is. It moves the disk's
    work earlier, beside what is still being written, instead of all at the sync."""
    sync_file_range = _sync_file_range()
    if sync_file_range is not None:
        sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE)  # a failure here is the sync's to report


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function
