"""The crash loop in the two-replica shape: two pachd replicas on one etcd and one
bucket (`--lease-ttl 3`); the replica driving a pipeline is killed -9, kept
down a few seconds (so the other takes its pipelines over), then restarted on
its data dir. Writers go through whichever replica answers. What must hold is
the single-pachd loop's (see tests/support/crashloop.py), read through both
replicas: every acknowledged commit byte for byte, exactly one live output
per input commit per downstream repo, no job FAILED by a takeover.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from pathlib import Path

import pytest

from pachyderm_client import Client
from pachd.pps import keys
from pachd.storage.etcd import EtcdKV
from tests.support.crashloop import (
    PIPELINES,
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
from tests.support.gcs import GcsEmulator
from tests.support.pachd import PachdProcess
from tests.support.wait import wait_until

LEASE = 3.0
TIMEOUT = 240


def owner_of(etcd: EtcdServer, pipeline: str) -> str:
    """The replica ID driving `pipeline` ("" while no replica holds it)."""

    async def read() -> str:
        kv = await EtcdKV.open(etcd.address)
        try:
            found = await kv.get(keys.owner(pipeline))
            return found.value.decode() if found is not None else ""
        finally:
            await kv.close()

    return asyncio.run(read())


def driving(servers: list[PachdProcess], etcd: EtcdServer, pipeline: str) -> PachdProcess:
    ids = {(s.data_dir / "replica-id").read_text().strip(): s for s in servers}
    wait_until(lambda: owner_of(etcd, pipeline) in ids, timeout=60, what=f"a replica to drive {pipeline}")
    return ids[owner_of(etcd, pipeline)]


def takeover_loop(root: Path, gcs: GcsEmulator, cycles: int) -> None:
    rng = random.Random(seed())
    etcd = EtcdServer(root / "etcd").start()
    bucket = f"takeover-{uuid.uuid4().hex[:8]}"
    gcs.create_bucket(bucket)
    storage = ["--storage", "gcs", "--gcs-bucket", bucket]
    env = {"STORAGE_EMULATOR_HOST": gcs.host}
    servers = [PachdProcess(root / f"replica{n}", etcd=etcd.address, extra_args=[*storage, "--lease-ttl", str(LEASE)],
                            env=env).start() for n in range(2)]
    try:
        with Client(servers[0].address) as client:
            create_pipelines(client)
        crashes, ledger = Crashes(), Ledger()
        writers = start_writers(addresses=[s.address for s in servers], crashes=crashes, ledger=ledger, rng=rng)
        try:
            for cycle in range(cycles):
                time.sleep(rng.uniform(1.0, 4.0))  # not a wait for anything: the moment of the next kill
                victim = driving(servers, etcd, rng.choice(PIPELINES))
                crashes.going_down()
                victim.kill()
                time.sleep(rng.uniform(LEASE + 0.5, 2 * LEASE))  # kept down past its lease: a takeover
                victim.start()
                crashes.back_up()
                for server in servers:
                    with Client(server.address) as client:
                        ledger.verify(client, f"after kill {cycle + 1} of {cycles}, through {server.data_dir.name}")
        finally:
            stop_writers(writers, crashes)
        with Client(servers[0].address) as client:
            jobs = assert_outputs(client, ledger, TIMEOUT)
        for server in servers:
            with Client(server.address) as client:
                ledger.verify(client, f"at the end, through {server.data_dir.name}")
        print(f"replicas: {cycles} takeovers, {len(ledger.acknowledged)} commits checked "
              f"({ledger.checked_reads} file reads), {jobs} jobs checked")
        for server in servers:
            server.stop()
        run_checker(servers[0].data_dir, etcd.address, storage, env)
    finally:
        for server in servers:
            server.stop()
        etcd.stop()


@pytest.mark.timeout(600)
def test_takeover_loop(tmp_path: Path, gcs_emulator: GcsEmulator) -> None:
    takeover_loop(tmp_path, gcs_emulator, cycles=4)


@pytest.mark.stress
@pytest.mark.timeout(3600)
def test_takeover_loop_long(tmp_path: Path, gcs_emulator: GcsEmulator) -> None:
    takeover_loop(tmp_path, gcs_emulator, cycles=30)
