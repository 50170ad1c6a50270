"""How pachctl prints: tables, relative times and sizes, as v1.2's pachctl did.

Tables are aligned like Go's tabwriter with the original's settings (cells of
at least 20 characters, 3 spaces of padding). Sizes are binary with up to four
significant digits ("1.5KiB"); times are "3 minutes ago".
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

from google.protobuf import timestamp_pb2

MIN_WIDTH = 20
PADDING = 3
_UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    widths = [MIN_WIDTH] * len(header)
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell) + PADDING)
    for row in [header, *rows]:
        out.write("".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() + "\n")


def size(count: int) -> str:
    value = float(count)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.4g}{_UNITS[unit]}"


def duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 46:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


def seconds(stamp: timestamp_pb2.Timestamp) -> float:
    return stamp.seconds + stamp.nanos / 1e9


def ago(stamp: timestamp_pb2.Timestamp, now: float | None = None) -> str:
    return f"{duration((now if now is not None else time.time()) - seconds(stamp))} ago"


def between(start: timestamp_pb2.Timestamp, end: timestamp_pb2.Timestamp) -> str:
    return duration(seconds(end) - seconds(start))
