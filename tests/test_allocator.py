"""pachd keeps freed buffers of received messages for the next ones (pachd/allocator.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MESSAGES = """
import collections, resource, sys
from pachd import allocator
if sys.argv[1] == "kept":
    assert allocator.keep_freed_buffers()

def faults_of_messages():
    # As gRPC hands a PutFile stream over: each 1 MiB message gathered from pieces into a
    # bytearray, made bytes, and held for a while (until its block is cut and written).
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    held = collections.deque()
    piece = b"x" * (64 << 10)
    for _ in range(300):
        message = bytearray()
        for _ in range(16):
            message += piece
        held.append(bytes(message))
        del message
        if len(held) > 8:
            held.popleft()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults_of_messages()
print(faults_of_messages())
"""


def _faults(mode: str) -> int:
    # In a process of its own, so the test process keeps the C library's defaults.
    done = subprocess.run([sys.executable, "-c", _MESSAGES, mode], cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return int(done.stdout)


def test_messages_reuse_freed_memory_instead_of_faulting_in_fresh_pages() -> None:
    assert _faults("kept") < 100
    assert _faults("defaults") > 300  # the same messages with glibc's defaults: fresh pages, faulted in
