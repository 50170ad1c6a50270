"""What list and inspect commands print: v1.2.3's text, or the messages themselves.

`--raw` prints each protobuf message as JSON on one line (v1.x's flag);
`-o json` prints a list command's messages as one JSON array (an inspect
command's as one object), `-o yaml` as YAML. Field names are protobuf JSON's
(camelCase), as `--raw` printed them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from google.protobuf.message import Message

FORMATS = ("text", "json", "yaml")


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw", action="store_true", help="print the protobuf messages as JSON, one per line")
    parser.add_argument("-o", "--output", choices=FORMATS, default="text",
                        help="text (default, as v1.2 prints it), json or yaml")


def _as_dict(message: Message) -> dict[str, Any]:
    from google.protobuf import json_format

    return json_format.MessageToDict(message)


def show(args: argparse.Namespace, messages: Sequence[Message], text: Callable[[], str], *, single: bool = False) -> None:
    """Prints `messages` as --raw/-o ask, or else `text()`."""
    out = sys.stdout
    if getattr(args, "raw", False):
        for message in messages:
            out.write(json.dumps(_as_dict(message), separators=(",", ":"), ensure_ascii=False) + "\n")
        return
    chosen = getattr(args, "output", "text")
    if chosen == "text":
        out.write(text())
        return
    data: Any = _as_dict(messages[0]) if single else [_as_dict(m) for m in messages]
    if chosen == "json":
        out.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        import yaml

        out.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
