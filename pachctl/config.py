"""pachctl's settings from the environment (the only place pachctl reads it)."""

from __future__ import annotations

import os

DEFAULT_ADDRESS = "0.0.0.0:30650"


def address() -> str:
    """ADDRESS=host:port picks the pachd to talk to, as in v1.2."""
    return os.environ.get("ADDRESS") or DEFAULT_ADDRESS


def tls_ca() -> bytes | None:
    """PACHD_TLS_CA names a CA certificate file: connect with TLS, trusting it."""
    path = os.environ.get("PACHD_TLS_CA")
    if not path:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def auth_token() -> str | None:
    """PACH_AUTH_TOKEN: the token pachd requires when started with --auth-token-file."""
    return os.environ.get("PACH_AUTH_TOKEN") or None
