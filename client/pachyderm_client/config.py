"""The client's settings: the environment over the config file (the only place the client and pachctl read either).

The config file is `~/.pachyderm/config.json` (or the file PACH_CONFIG names), a
JSON object with any of:

    {"address": "host:port", "tls_ca": "/path/to/ca.pem", "token": "..."}

ADDRESS, PACHD_TLS_CA and PACH_AUTH_TOKEN override its entries, and pachctl's
--address flag overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

DEFAULT_ADDRESS = "0.0.0.0:30650"
KEYS = ("address", "tls_ca", "token")


class ConfigError(ValueError):
    """The config file cannot be read or is malformed; names the file."""


def path() -> Path:
    """The config file: PACH_CONFIG, or ~/.pachyderm/config.json."""
    return Path(os.environ.get("PACH_CONFIG") or Path.home() / ".pachyderm" / "config.json")


def _file() -> dict[str, Any]:
    where = path()
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the config file {where}: {err}") from err
    import json  # only where there is a file: most commands and every pod have none

    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"cannot read the config file {where}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"the config file {where} must hold a JSON object")
    for key, value in data.items():
        if key not in KEYS:
            raise ConfigError(f"the config file {where} has an unknown key {key!r}; known: {', '.join(KEYS)}")
        if not isinstance(value, str):
            raise ConfigError(f"the config file {where}: {key!r} must be a string")
    return data


def _setting(variable: str, key: str) -> str | None:
    return os.environ.get(variable) or _file().get(key) or None


def address() -> str:
    """ADDRESS=host:port picks the pachd to talk to, as in v1.2; else the config file's address."""
    return _setting("ADDRESS", "address") or DEFAULT_ADDRESS


def tls_ca() -> bytes | None:
    """PACHD_TLS_CA (or the config file's tls_ca) names a CA certificate file: connect with TLS, trusting it."""
    ca = _setting("PACHD_TLS_CA", "tls_ca")
    if not ca:
        return None
    with open(os.path.expanduser(ca), "rb") as handle:
        return handle.read()


def auth_token() -> str | None:
    """PACH_AUTH_TOKEN (or the config file's token): the token pachd requires when started with --auth-token-file."""
    return _setting("PACH_AUTH_TOKEN", "token")


def local_fast_path() -> bool:
    """PACH_LOCAL_FASTPATH=0 keeps file data on the gRPC stream even where pachd offers the
    same-machine fast path (see local.py); anything else, or unset, lets the client use it."""
    return os.environ.get("PACH_LOCAL_FASTPATH", "1") != "0"
