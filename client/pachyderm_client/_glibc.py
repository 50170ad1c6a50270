"""The C library's calls Python's os module lacks, through ctypes: glibc's allocator controls
(mallopt, malloc_trim) for the processes that move large messages (pachd, pachctl get-file),
sync_file_range for pachd's block writes, and mount, umount2 and unshare for the layers of local
pods (pachd/executor/overlay.py). None, or nothing done, where the C library has not got them
(musl's allocator, macOS), which then keeps its defaults."""

from __future__ import annotations

import ctypes
import functools
import os
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


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 1, 2, 4, 4096, 16384  # mount's flags (sys/mount.h)
MS_SLAVE, MS_SHARED = 1 << 19, 1 << 20
MNT_DETACH = 2  # umount2: detach now, free once unused
CLONE_NEWNS = 0x00020000  # unshare: a mount namespace of the process's own (sched.h)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2); raises OSError with its errno (only root may)."""
    _checked(_mount_calls().mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                                  data.encode() if data else None), target)


def unmount(target: str, flags: int = MNT_DETACH) -> None:
    """umount2(2); raises OSError with its errno."""
    _checked(_mount_calls().umount2(target.encode(), flags), target)


def unshare(flags: int) -> None:
    """unshare(2) (Python's os has it from 3.12 on); raises OSError with its errno."""
    _checked(_mount_calls().unshare(flags), "unshare")


def _checked(result: int, target: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number), target)


@functools.cache
def _mount_calls() -> ctypes.CDLL:
    """The C library with mount, umount2 and unshare; an OSError where it has not got them."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
        libc.mount.restype = ctypes.c_int
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.umount2.restype = ctypes.c_int
        libc.unshare.argtypes = [ctypes.c_int]
        libc.unshare.restype = ctypes.c_int
    except (OSError, AttributeError) as err:
        raise OSError(0, f"this C library cannot mount: {err}") from err
    return libc
