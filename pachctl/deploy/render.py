"""Objects to text: one YAML stream of documents, headed by how it was made.

YAML rather than the JSON v1.2 printed: `kubectl create -f -` reads either,
but a multi-document stream keeps every object a whole, standalone manifest
(a v1 List has no schema of its own to validate against), it carries a
comment saying which command made it, and people read and diff it easily.
Keys keep the order the builders give them, so the output is stable byte for
byte.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml


def render(objects: Sequence[dict[str, Any]], header: Sequence[str] = ()) -> str:
    """`header` lines as comments, then each object as a `---` document."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return comments + yaml.safe_dump_all(
        objects, explicit_start=True, sort_keys=False, default_flow_style=False, width=4096,
    )


def parse(text: str) -> list[dict[str, Any]]:
    """The objects of a rendered stream (comments and empty documents skipped)."""
    return [document for document in yaml.safe_load_all(text) if document]
