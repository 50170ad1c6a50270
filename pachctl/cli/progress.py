"""The one progress bar: drawn on stderr, only when stderr is a terminal and without --quiet.

It never touches stdout: get-file's bytes go there, and a bar (or the newline a
finished live display leaves) would corrupt them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator


def wanted(quiet: bool) -> bool:
    """Whether a bar would be shown: not --quiet, and stderr is a terminal."""
    return not quiet and sys.stderr.isatty()


@contextlib.contextmanager
def transfer(description: str, total: int | None, *, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """Yields a callback taking bytes moved, or None when no bar is wanted."""
    if not wanted(quiet):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    console = Console(file=sys.stderr, force_terminal=True)
    columns = ("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True, redirect_stdout=False, redirect_stderr=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda moved: bar.advance(task, moved)
