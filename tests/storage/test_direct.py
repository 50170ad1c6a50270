"""DirectFile: files written around the page cache hold exactly their bytes, and where the
filesystem refuses O_DIRECT (at the open, or at a write) they are written through the cache."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pachd.storage import direct
from pachd.storage.direct import STAGE, DirectFile

MIB = 1 << 20
ROOT = Path(__file__).resolve().parents[2]


def _parts(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    sizes = [0, 1, 4095, 4096, 4097, STAGE - 1, STAGE, STAGE + 1, 3 * MIB + 7, 512]
    rng.shuffle(sizes)
    return [rng.randbytes(size) for size in sizes]


def _flags(fd: int) -> int:
    for line in Path(f"/proc/self/fdinfo/{fd}").read_text().splitlines():
        if line.startswith("flags:"):
            return int(line.split()[1], 8)
    raise AssertionError("no flags in fdinfo")


def test_a_direct_file_holds_its_parts_whatever_their_sizes(tmp_path: Path) -> None:
    for seed in range(3):
        parts = _parts(seed)
        path = tmp_path / f"block{seed}"
        with DirectFile(path) as out:
            out.write(parts[:4])
            assert _flags(out.fileno()) & os.O_DIRECT  # around the page cache, on this filesystem
            out.write([memoryview(p) for p in parts[4:]])
        assert out.direct
        assert path.read_bytes() == b"".join(parts)


def test_small_files_and_leftover_staging_buffers(tmp_path: Path) -> None:
    with DirectFile(tmp_path / "small", direct=False) as out:
        assert not _flags(out.fileno()) & os.O_DIRECT
        out.write([b"abc", b"", b"def"])
    assert (tmp_path / "small").read_bytes() == b"abcdef"
    with pytest.raises(RuntimeError):
        with DirectFile(tmp_path / "failed") as out:
            out.write([b"x" * 10])
            raise RuntimeError("the stream broke")
    assert (tmp_path / "failed").read_bytes() == b""  # what was staged was not written
    with pytest.raises(FileExistsError):
        DirectFile(tmp_path / "small")


def test_a_write_the_filesystem_refuses_goes_through_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Unaligned direct writes are refused (EINVAL) by the filesystem: the file goes on through the cache.
    monkeypatch.setattr(direct, "ALIGN", 1)
    parts = [os.urandom(STAGE), os.urandom(5 * 4096 + 3)]
    with DirectFile(tmp_path / "block") as out:
        out.write(parts)
    assert not out.direct
    assert (tmp_path / "block").read_bytes() == b"".join(parts)


_ON_RAMFS = """
import asyncio, hashlib, sys
from pathlib import Path
from pachd.storage.direct import DirectFile
from pachd.storage.localdisk import LocalBlockStore

root = Path(sys.argv[1])
data = bytes(range(256)) * (12 * 4096 + 1)
with DirectFile(root / "plain") as out:
    out.write([data[:1000], data[1000:]])
assert not out.direct, "ramfs took O_DIRECT"
assert (root / "plain").read_bytes() == data

async def main():
    store = LocalBlockStore(root / "objects", reserve=0)
    batch = store.batch()
    name = "blocks/" + hashlib.sha512(data).hexdigest()
    await batch.put(name, [data])
    await batch.commit()
    assert await store.get(name) == data
asyncio.run(main())
print("ok")
"""


def test_where_the_filesystem_refuses_o_direct_files_go_through_the_cache(tmp_path: Path) -> None:
    # ramfs has no O_DIRECT (EINVAL at the open); mounted in a user and mount namespace of the test's own.
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1)")
    folder = tmp_path / "ramfs"
    folder.mkdir()
    script = tmp_path / "on_ramfs.py"
    script.write_text(_ON_RAMFS)
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", 'mount -t ramfs ramfs "$1" && exec "$2" "$3" "$1"', "sh",
         str(folder), sys.executable, str(script)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0 and "mount" in done.stderr and "ok" not in done.stdout:
        pytest.skip(f"cannot mount ramfs here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
