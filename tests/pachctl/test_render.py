"""Tables, sizes and times look like v1.2's pachctl output."""

from __future__ import annotations

import io

from google.protobuf import timestamp_pb2

from pachctl.cli import render


def test_sizes() -> None:
    assert render.size(0) == "0B"
    assert render.size(874) == "874B"
    assert render.size(1536) == "1.5KiB"
    assert render.size(1024 * 1024) == "1MiB"
    assert render.size(int(2.25 * 1024**3)) == "2.25GiB"
    assert render.size(123456789) == "117.7MiB"


def test_durations() -> None:
    assert render.duration(0.3) == "Less than a second"
    assert render.duration(1) == "1 second"
    assert render.duration(42) == "42 seconds"
    assert render.duration(70) == "About a minute"
    assert render.duration(600) == "10 minutes"
    assert render.duration(3600) == "About an hour"
    assert render.duration(5 * 3600) == "5 hours"
    assert render.duration(3 * 86400) == "3 days"
    assert render.duration(20 * 86400) == "2 weeks"
    assert render.duration(90 * 86400) == "3 months"
    assert render.duration(800 * 86400) == "2 years"


def test_ago() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1000)
    assert render.ago(stamp, now=1005) == "5 seconds ago"


def test_tables_align_like_tabwriter() -> None:
    out = io.StringIO()
    render.table(["NAME", "SIZE"], [["data", "1KiB"], ["a_much_longer_repo_name", "2B"]], out)
    assert out.getvalue().splitlines() == [
        "NAME" + " " * 22 + "SIZE",
        "data" + " " * 22 + "1KiB",
        "a_much_longer_repo_name   2B",
    ]
