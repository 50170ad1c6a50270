"""Where manifests come from: a file, a URL, or standard input."""

from __future__ import annotations

import sys
import urllib.parse
import urllib.request
from pathlib import Path

from pachctl.client import InvalidArgumentError


def read_source(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    if urllib.parse.urlparse(source).scheme in ("http", "https"):
        with urllib.request.urlopen(source, timeout=60) as response:
            return str(response.read().decode())
    try:
        return Path(source).read_text()
    except OSError as err:
        raise InvalidArgumentError(f"cannot read {source}: {err.strerror}") from err
