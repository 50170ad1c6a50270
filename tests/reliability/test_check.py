"""The metadata consistency checker: silent on a healthy store, loud on a damaged one."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from pachyderm_client import Client
from pachd.check import check_stores
from pachd.config import PachdConfig
from pachd.pfs import keys
from pachd.pfs.records import BranchRecord, encode
from pachd.storage import open_kv
from pachd.storage.kv import KV
from tests.support.cli import pachctl
from tests.support.examples import example
from tests.support.pachd import PachdProcess

FRUIT_STAND = example("fruit_stand")
TIMEOUT = 120


def fruit_stand(address: str) -> None:
    """The tutorial, through pachctl: two input commits, both pipelines run twice."""
    assert pachctl(address, "create-repo", "data").code == 0
    for number, sales in enumerate(("set1.txt", "set2.txt")):
        put = pachctl(address, "put-file", "data", "master", "sales", "-c", "-f", str(FRUIT_STAND / sales))
        assert put.code == 0, put.err
        if number == 0:
            created = pachctl(address, "create-pipeline", "-f", str(FRUIT_STAND / "pipeline.json"))
            assert created.code == 0, created.err
        flushed = pachctl(address, "flush-commit", f"data/master/{number}")
        assert flushed.code == 0, flushed.err


def files_workload(client: Client) -> None:
    """Small files packed together, a chunked large file, appends, deletes, a fork,
    a cancelled commit, provenance, and an open commit left with pending writes."""
    client.create_repo("files")
    with client.commit("files") as first:
        client.put_files(("files", first.id), [(f"/small/{i}", b"%d\n" % i * (i + 1)) for i in range(40)])
        client.put_file(("files", first.id), "/big", b"".join(b"line %d\n" % i for i in range(400_000)))
        client.make_directory(("files", first.id), "/empty")
    with client.commit("files") as second:
        client.put_file(("files", second.id), "/big", b"appended\n")
        client.delete_file(("files", second.id), "/small/3")
        client.delete_file(("files", second.id), "/empty")
    side = client.fork_commit("files", second.id, "side")
    client.put_file(("files", side.id), "/small/3", b"back on the side\n")
    client.finish_commit(("files", side.id))
    cancelled = client.start_commit("files")
    client.put_file(("files", cancelled.id), "/dropped", b"never counted\n")
    client.cancel_commit(("files", cancelled.id))
    pending = client.start_commit("files", "side")
    client.put_file(("files", pending.id), "/pending", b"still being written\n")
    client.create_repo("downstream", provenance=["files"])
    derived = client.start_commit("downstream", "master", [("files", second.id)])
    client.put_file(("downstream", derived.id), "/derived", b"from files\n")
    client.finish_commit(("downstream", derived.id))


def config_of(pachd: PachdProcess) -> PachdConfig:
    return PachdConfig(data_dir=pachd.data_dir, etcd_address=pachd.etcd)


def run_check(pachd: PachdProcess, *, verify_data: bool = False) -> list[str]:
    return asyncio.run(check_stores(config_of(pachd), verify_data=verify_data))


def with_kv(pachd: PachdProcess, change: Callable[[KV], Awaitable[object]]) -> None:
    async def run() -> None:
        kv = await open_kv(config_of(pachd))
        try:
            await change(kv)
        finally:
            await kv.close()

    asyncio.run(run())


def check_cli(pachd: PachdProcess) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "pachd.check", "--data-dir", str(pachd.data_dir)]
    if pachd.etcd:
        args += ["--etcd", pachd.etcd]
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)


def biggest_blocks(data_dir: Path) -> list[Path]:
    found = [p for p in (data_dir / "objects" / "blocks").rglob("*") if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_size, reverse=True)


def test_healthy_store_then_each_corruption_is_reported(own_pachd_any: PachdProcess) -> None:
    pachd = own_pachd_any
    fruit_stand(pachd.address)
    with Client(pachd.address) as client:
        files_workload(client)
        assert client.inspect_job(client.list_job("sum")[0].job.id).state == 3  # JOB_SUCCESS
    assert pachd.stop() == 0

    assert run_check(pachd, verify_data=True) == []
    clean = check_cli(pachd)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == ""

    missing_block, damaged_block = biggest_blocks(pachd.data_dir)[:2]
    missing_block.unlink()
    problems = run_check(pachd)
    assert any(missing_block.name[:16] in p and "missing" in p for p in problems), problems

    with_kv(pachd, lambda kv: kv.delete(keys.commit("files", "master", 0)))
    problems = run_check(pachd)
    assert any(p.startswith("commit files/master/1:") and "parent" in p for p in problems), problems

    with_kv(pachd, lambda kv: kv.put(keys.branch("files", "side"), encode(BranchRecord(99))))
    problems = run_check(pachd)
    assert any(p.startswith("branch files/side:") and "side/99" in p for p in problems), problems

    damaged_block.write_bytes(b"x" * damaged_block.stat().st_size)  # same size: only hashing notices
    assert not any(damaged_block.name[:16] in p for p in run_check(pachd))
    assert any(damaged_block.name[:16] in p for p in run_check(pachd, verify_data=True))

    damaged = check_cli(pachd)
    assert damaged.returncode == 1
    assert len(damaged.stdout.splitlines()) == len(run_check(pachd)) >= 3
    assert "Traceback" not in damaged.stderr


def test_cli_refuses_a_missing_data_dir(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "pachd.check", "--data-dir", str(tmp_path / "absent")],
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
