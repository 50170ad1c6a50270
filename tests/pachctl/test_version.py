"""`pachctl version`: v1.2.3's table, our build under -v, and a non-zero exit without pachd."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import pachctl
from tests.support.pachd import PachdProcess
from tests.support.ports import free_port

GOLDEN = Path(__file__).parent / "golden" / "version.txt"


def test_version_shows_v1_2_3(pachd: PachdProcess) -> None:
    ran = pachctl(pachd.address, "version")
    assert ran.code == 0
    header, ours = GOLDEN.read_text().splitlines(keepends=True)[:2]
    assert ran.out.splitlines(keepends=True)[:2] == [header, ours]
    assert ran.out.splitlines()[2].split()[0] == "pachd"


def test_verbose_version_names_this_build(pachd: PachdProcess) -> None:
    assert pachctl(pachd.address, "-v", "version").out.splitlines()[1].split() == ["pachctl", "1.2.3-py"]


def test_version_fails_without_pachd() -> None:
    ran = pachctl(f"127.0.0.1:{free_port()}", "version")
    assert ran.code == 1
    assert ran.out.splitlines()[1].split() == ["pachctl", "1.2.3"]
    assert "version unknown" in ran.err
