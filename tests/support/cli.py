"""Running pachctl in tests, in-process, with its output captured."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from unittest import mock

from pachctl.main import main


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str


def pachctl(address: str, *args: str, stdin: str = "") -> Result:
    """`pachctl args...` against `address`; returns exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    stdin_stream = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    stdout_stream = _BinaryCapture(out)
    with mock.patch.dict(os.environ, {"ADDRESS": address}), mock.patch("sys.stdin", stdin_stream), \
            mock.patch("sys.stdout", stdout_stream), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit_:  # argparse errors
            code = int(exit_.code or 0)
    return Result(code, out.getvalue(), err.getvalue())


class _BinaryCapture(io.TextIOWrapper):
    """A text stdout whose .buffer also lands in the captured text (get-file writes bytes)."""

    def __init__(self, target: io.StringIO) -> None:
        self._target = target
        self._raw = _Sink(target)
        super().__init__(self._raw, encoding="utf-8", write_through=True)

    def write(self, text: str) -> int:
        self._target.write(text)
        return len(text)


class _Sink(io.RawIOBase):
    def __init__(self, target: io.StringIO) -> None:
        self._target = target

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._target.write(bytes(data).decode(errors="replace"))
        return len(data)
