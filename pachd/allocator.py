"""How pachd's C allocator treats large buffers, and when it gives freed memory back.

Every message pachd receives becomes fresh buffers of its size (gRPC's
bytes of a 1 MiB PutFile request, the views cut from them), freed a moment
later. glibc serves such sizes with mmap, or trims the freed top of its heap
back to the system, so each new buffer is fresh memory: a page fault and a
zeroed page per 4 KiB, which cost more CPU than receiving the bytes (0.3-0.5 s
per GiB put, measured). Keeping buffers up to 32 MiB in the heap, and up to
TRIM bytes of freed heap before trimming, lets the next message reuse the
last one's memory.

What is kept must not add up with time, though. glibc gives each thread
that allocates while another holds the lock an arena (heap) of its own, up to
8 per core, and a heap is trimmed only past TRIM: gRPC's threads receive
messages, the event loop copies them out, worker threads hash and write
them, each in its own heap, and each heap kept the most it ever held, freed
or not. pachd's memory was then the sum of every heap's own peak, which grew
with the length of a put as rarer overlaps were met (put-file -r of 1 KiB
files: +48 MiB at 25,000 files, +76 at 100,000, +82 at 200,000). So pachd
uses one arena (ARENAS): what one thread freed, the next can reuse; and a
call that brought many bytes in gives the freed memory back when it ends
(release_freed, called by interceptors.ReleaseFreed), so what pachd holds
between calls is what is live, and a put's peak is one call's own.
"""

from __future__ import annotations

import logging

from pachyderm_client._glibc import M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, c_library

logger = logging.getLogger(__name__)

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Buffers smaller than this come from the heap (glibc's largest allowed threshold)."""
TRIM = 64 * 1024 * 1024
"""Freed memory at the top of a heap that is kept for reuse rather than returned."""
ARENAS = 1
"""Heaps every thread shares (glibc's default: up to 8 per core). Python code allocates under the
GIL, one thread at a time, and most small allocations come from each thread's own cache
(tcache), so the one heap's lock is seldom waited for (big puts' CPU did not change, measured)."""


def keep_freed_buffers() -> bool:
    """Sets the thresholds and the one arena above (before pachd starts its threads); False where
    the C library is not glibc (nothing changed)."""
    libc = c_library()
    if libc is None:
        logger.debug("no mallopt in the C library: its allocator keeps its defaults")
        return False
    return (bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM))
            and bool(libc.mallopt(M_ARENA_MAX, ARENAS)))


def release_freed() -> None:
    """Gives the freed memory of every heap back to the system (malloc_trim), the kept buffers
    included: the next call faults its pages in again, once."""
    libc = c_library()
    if libc is not None:
        libc.malloc_trim(0)
