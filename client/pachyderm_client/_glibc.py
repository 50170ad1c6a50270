"""glibc's allocator controls (mallopt, malloc_trim) through ctypes, for the processes that move
large messages (pachd, pachctl get-file); None where the C library is not glibc (musl, macOS),
whose allocator then keeps its defaults."""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8  # mallopt's parameters (malloc.h)

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
