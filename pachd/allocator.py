"""How pachd's C allocator treats large buffers.

Every message pachd receives becomes fresh buffers of its size (gRPC's
bytes of a 1 MiB PutFile request, the views cut from them), freed a moment
later. glibc serves such sizes with mmap, or trims the freed top of its heap
back to the system, so each new buffer is fresh memory: a page fault and a
zeroed page per 4 KiB, which cost more CPU than receiving the bytes (0.3-0.5 s
per GiB put, measured). Keeping buffers up to 32 MiB in the heap, and up to
TRIM bytes of freed heap before trimming, lets the next message reuse the
last one's memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
"""Buffers smaller than this come from the heap (glibc's largest allowed threshold)."""
TRIM = 64 * 1024 * 1024
"""Freed memory at the top of a heap that is kept for reuse rather than returned."""


def keep_freed_buffers() -> bool:
    """Sets the thresholds above; False where the C library is not glibc (nothing changed)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.debug("no mallopt in the C library: its allocator keeps its defaults")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM))
