"""pachd's own memory after puts of many small files: what it holds does not grow with the put.

Python's own peak is held apart (test_per_file_cost.py, tracemalloc); what is
measured here is the process's anonymous memory (RssAnon: the C allocator's
heaps, Python's arenas, gRPC's and SQLite's buffers), read when pachd is idle
between puts, so no timing enters. glibc kept each thread's heap at the most
it ever held, and pachd's memory grew with the length of a put (see
pachd/allocator.py): a 4x larger put left some 20 MiB more behind.
"""

from __future__ import annotations

import os

from pachyderm_client import Client
from tests.support.memory import process_memory
from tests.support.pachd import PachdProcess

MIB = 1 << 20
SMALL = 12_500
"""Files of the small put (1 KiB each); the large one has four times as many."""
MARGIN = 10 * MIB
"""Growth allowed after the 4x larger put (after the change: 0-5 MiB; before: 15-25 MiB)."""


def _put(client: Client, branch: str, count: int) -> None:
    with client.commit("many", branch) as commit:
        client.put_files(("many", commit.id), ((f"d{i % 100}/f{i}", os.urandom(1024)) for i in range(count)))


def test_a_put_four_times_larger_leaves_pachd_holding_no_more_memory(own_pachd: PachdProcess) -> None:
    assert own_pachd.process is not None
    pid = own_pachd.process.pid
    with Client(own_pachd.address) as client:
        client.create_repo("many")
        _put(client, "warm", SMALL)  # what any put reaches: pools, caches, the heap's working size
        _put(client, "small", SMALL)
        after_small = process_memory(pid, "RssAnon")
        _put(client, "large", 4 * SMALL)
        after_large = process_memory(pid, "RssAnon")
        assert client.inspect_commit(("many", "large")).size_bytes == 4 * SMALL * 1024
    grown = after_large - after_small
    assert grown < MARGIN, f"pachd holds {grown / MIB:.1f} MiB more after a put of {4 * SMALL} files than of {SMALL}"
