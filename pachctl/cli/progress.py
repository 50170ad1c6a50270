"""The one progress bar: shown only on an interactive stderr and without --quiet."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn


@contextlib.contextmanager
def transfer(description: str, total: int | None, *, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """Yields a callback taking bytes moved, or None when no bar is wanted."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda moved: bar.advance(task, moved)
