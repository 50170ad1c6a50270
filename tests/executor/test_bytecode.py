"""The local executor writes our shim's bytecode ahead (pachd/executor/bytecode.py): its pods,
unprivileged over a read-only system, cannot write it and would compile every module again."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pachd.executor import bytecode
from pachd.executor.local import LocalExecutor


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A package `shimlike` (a module and a subpackage), importable, with no bytecode."""
    root = tmp_path / "code" / "shimlike"
    (root / "sub").mkdir(parents=True)
    for path in (root / "__init__.py", root / "main.py", root / "sub" / "__init__.py", root / "sub" / "wire.py"):
        path.write_text(f"NAME = {path.stem!r}\n")
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    yield root
    sys.modules.pop("shimlike", None)


def _cached(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_missing_and_stale_bytecode_is_written_and_current_bytecode_left_alone(package: Path) -> None:
    assert bytecode.write_ahead(("shimlike",))
    modules = [package / "main.py", package / "sub" / "wire.py"]
    assert all(_cached(module).exists() for module in modules)
    written = {module: _cached(module).stat().st_mtime_ns for module in modules}
    (package / "main.py").write_text("NAME = 'edited'\n")
    os.utime(package / "main.py", ns=(1, 1))  # another mtime than the bytecode records, whatever the clock
    assert bytecode.write_ahead(("shimlike",))
    assert _cached(package / "sub" / "wire.py").stat().st_mtime_ns == written[package / "sub" / "wire.py"]
    assert _cached(package / "main.py").stat().st_mtime_ns != written[package / "main.py"]


def test_a_package_that_cannot_be_found_is_passed_over() -> None:
    assert bytecode.write_ahead(("no_such_package_here",))


@pytest.mark.parametrize("own_shim", [True, False])
def test_the_local_executor_writes_its_own_shims_bytecode_as_it_starts(
        package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_shim: bool) -> None:
    monkeypatch.setattr(bytecode, "SHIM_PACKAGES", ("shimlike",))
    executor = LocalExecutor(root=tmp_path / "pods", pachd_address="127.0.0.1:1", shim="job-shim", base_env={},
                             own_shim=own_shim)
    asyncio.run(executor.recover())
    assert _cached(package / "main.py").exists() is own_shim  # another program's pods: not ours to compile
