"""Keeping secret values out of what pachd shows: job and pipeline specs, and logs.

A transform's env variable counts as secret when its name says so (SECRET,
PASSWORD, TOKEN, ...). Pods still get the real values; replies show a
placeholder, and log lines have the values blanked out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pachd.pps.specs import Transform

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE)


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def shown_env(transform: Transform) -> dict[str, str]:
    """The transform's env as replies may show it."""
    return {name: REDACTED if is_secret(name) and value else value for name, value in transform.env}


def secret_values(transforms: Iterable[Transform]) -> list[bytes]:
    """Values to blank out of logs (longest first, so no value hides part of another)."""
    values = {value.encode() for t in transforms for name, value in t.env if is_secret(name) and len(value) >= 4}
    return sorted(values, key=len, reverse=True)


def scrub(line: bytes, values: list[bytes]) -> bytes:
    for value in values:
        line = line.replace(value, REDACTED.encode())
    return line
