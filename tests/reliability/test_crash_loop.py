"""The crash loop on one pachd: killed -9 at random moments while writers commit
into a 2-stage pipeline, and restarted on the same data dir (see
tests/support/crashloop.py for what is written and what must hold).

The short run is part of `make test`; the long one is marked `stress`.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from pachyderm_client import Client
from tests.support.crashloop import (
    Crashes,
    Ledger,
    assert_outputs,
    create_pipelines,
    run_checker,
    seed,
    start_writers,
    stop_writers,
)
from tests.support.etcd import EtcdServer
from tests.support.pachd import PachdProcess

TIMEOUT = 240


def crash_loop(backend: str, root: Path, cycles: int) -> None:
    rng = random.Random(seed())
    etcd = EtcdServer(root / "etcd").start() if backend == "etcd" else None
    server = PachdProcess(root / "data", etcd=etcd.address if etcd else "").start()
    try:
        with Client(server.address) as client:
            create_pipelines(client)
        crashes, ledger = Crashes(), Ledger()
        writers = start_writers(addresses=[server.address], crashes=crashes, ledger=ledger, rng=rng)
        try:
            for cycle in range(cycles):
                time.sleep(rng.uniform(0.5, 3.0))  # not a wait for anything: the moment of the next kill
                crashes.going_down()
                server.kill()
                server.start()
                crashes.back_up()
                with Client(server.address) as client:
                    ledger.verify(client, f"after kill {cycle + 1} of {cycles}")
        finally:
            stop_writers(writers, crashes)
        with Client(server.address) as client:
            jobs = assert_outputs(client, ledger, TIMEOUT)
            ledger.verify(client, "at the end")
        print(f"{backend}: {cycles} kills, {len(ledger.acknowledged)} commits checked "
              f"({ledger.checked_reads} file reads), {jobs} jobs checked")
        server.stop()
        run_checker(server.data_dir, server.etcd)
    finally:
        server.stop()
        if etcd is not None:
            etcd.stop()


@pytest.mark.timeout(600)
@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_crash_loop(backend: str, tmp_path: Path) -> None:
    crash_loop(backend, tmp_path, cycles=5)


@pytest.mark.stress
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_crash_loop_long(backend: str, tmp_path: Path) -> None:
    crash_loop(backend, tmp_path, cycles=60)
