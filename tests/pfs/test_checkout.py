"""check_out: a local folder holding a commit's files, brought to a later commit by what changed."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pachd.pfs import Pfs
from pachd.pfs import checkout as checkout_module
from pachd.pfs.checkout import check_out
from pachd.pfs.chunking import Delimiter
from pachd.pfs.files import FileHeader, PutItem
from pachd.pfs.records import FileDiff
from pachd.storage.localdisk import LocalBlockStore
from pachd.storage.sqlite import SqliteKV

BIG = os.urandom(9 * 1024 * 1024 + 7)  # longer than a piece held in memory: streamed into its file


async def _put(pfs: Pfs, commit: str, files: dict[str, bytes], delimiter: Delimiter = Delimiter.LINE) -> None:
    async def items() -> AsyncIterator[PutItem]:
        for path, data in files.items():
            yield FileHeader("out", commit, "/" + path, delimiter=delimiter)
            yield data

    await pfs.files.put(items())


async def _contents(pfs: Pfs, commit: str) -> dict[str, bytes]:
    return {path.lstrip("/"): b"".join([c async for c in pfs.files.get("out", commit, path)])
            async for path, _ in pfs.files.walk("out", commit)}


def _folder(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_a_folder_follows_a_commit_and_then_only_what_changed(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checkout_module, "BATCH_FILES", 7)  # many batches, so their bounds are crossed too
    written: list[str] = []
    original = checkout_module._prepare

    def prepare(folder: Path, path: str, diff: FileDiff, owner: tuple[int, int] | None) -> int | None:
        written.append(path)
        return original(folder, path, diff, owner)

    monkeypatch.setattr(checkout_module, "_prepare", prepare)
    kv = await SqliteKV.open(tmp_path / "kv.db")
    try:
        pfs = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)
        await pfs.repos.create("out", ())
        first = await pfs.commits.start("out", "master", (), new_branch=True)
        await _put(pfs, first.id, {"a": b"one\n", "b": b"bee\n", "c": b"sea\n", "d/x": b"x\n", "d/deep/y": b"y\n",
                                   "e/z": b"z\n", "f": b"plain\n", "empty": b"",
                                   **{f"n/{i}": f"{i}\n".encode() for i in range(40)}})
        await _put(pfs, first.id, {"big": BIG}, Delimiter.NONE)
        await pfs.commits.finish("out", first.id)
        second = await pfs.commits.start("out", first.id, ())
        await _put(pfs, second.id, {"a": b"two\n", "big": b"tail"})  # appends
        for path in ("b", "c", "d", "e", "f"):
            await pfs.files.delete("out", second.id, "/" + path)
        await _put(pfs, second.id, {"b": b"B\n", "e": b"now a file\n", "f/g": b"inside\n", "h": b"new\n"})
        await pfs.commits.finish("out", second.id)

        folder = tmp_path / "tree"
        assert await check_out(pfs, "out", first.id, folder) > 40
        assert _folder(folder) == await _contents(pfs, first.id)
        written.clear()
        await check_out(pfs, "out", second.id, folder, since=(await pfs.commits.get("out", first.id))[0].root)
        assert _folder(folder) == await _contents(pfs, second.id)
        assert not (folder / "d").exists() and not (folder / "c").exists()
        assert not any(p.startswith("/n/") for p in written)  # the unchanged folder was not walked
        assert set(written) <= {"/a", "/big", "/b", "/c", "/d", "/e", "/f", "/f/g", "/h"}
    finally:
        await kv.close()


async def test_a_copy_never_takes_the_room_puts_need(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kv = await SqliteKV.open(tmp_path / "kv.db")
    try:
        pfs = Pfs(kv=kv, blocks=LocalBlockStore(tmp_path / "blocks"), shared=False)
        await pfs.repos.create("out", ())
        commit = await pfs.commits.start("out", "master", (), new_branch=True)
        await _put(pfs, commit.id, {"a": b"one\n"})
        await pfs.commits.finish("out", commit.id)
        # More than the disk has free (by far: other processes may free some meanwhile).
        monkeypatch.setattr(checkout_module, "ROOM", shutil.disk_usage(tmp_path).free + (1 << 30))
        with pytest.raises(OSError) as refused:
            await check_out(pfs, "out", commit.id, tmp_path / "tree")
        assert refused.value.errno == errno.ENOSPC and "are not free for a copy of out@" in str(refused.value)
        assert not any((tmp_path / "tree").iterdir())
    finally:
        await kv.close()
