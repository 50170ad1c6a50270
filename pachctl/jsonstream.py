"""Concatenated JSON documents, read with the line and column of every key and value.

Manifests are streams of JSON objects written one after another (not an
array). read_documents splits such a stream, reports syntax errors with their
line and column, and returns each document as a tree of Nodes that remember
where they were written, so later checks (unknown fields, wrong types) can
point at the exact spot too.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from dataclasses import dataclass
from typing import TypeAlias

logger = logging.getLogger(__name__)

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?")
_LITERALS: dict[str, bool | None] = {"true": True, "false": False, "null": None}


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the text: 1-based line and column."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


Scalar: TypeAlias = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Member:
    """One key of a JSON object: where the key was written, and its value."""

    key_position: Position
    node: Node


@dataclass(frozen=True, slots=True)
class Node:
    """A JSON value and where it starts. Objects hold Members, arrays hold Nodes."""

    value: dict[str, Member] | list[Node] | Scalar
    position: Position

    @property
    def kind(self) -> str:
        """The JSON type's name: object, array, string, number, boolean or null."""
        return json_kind(self.value)


@dataclass(frozen=True, slots=True)
class Document:
    """One top-level value of the stream; `index` counts from 1."""

    index: int
    root: Node


class JSONStreamError(ValueError):
    """The text is not a stream of well-formed JSON values."""

    def __init__(self, message: str, *, document: int, position: Position) -> None:
        super().__init__(f"{message} (object {document}, {position})")
        self.reason = message
        self.document = document
        self.position = position


def json_kind(value: object) -> str:
    """The JSON type name of a parsed value."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null"


def _skip_whitespace(text: str, offset: int) -> int:
    match = _WHITESPACE.match(text, offset)
    assert match is not None  # the pattern matches the empty string
    return match.end()


_SURROGATE = re.compile("[\ud800-\udfff]")


class _Lines:
    """Turns offsets into line and column numbers."""

    def __init__(self, text: str) -> None:
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def position(self, offset: int) -> Position:
        line = bisect.bisect_right(self._starts, offset) - 1
        return Position(line + 1, offset - self._starts[line] + 1)


def read_documents(text: str) -> list[Document]:
    """Every JSON value in `text`, in order; raises JSONStreamError on bad syntax."""
    text = text.removeprefix("\ufeff")
    lines = _Lines(text)
    decoder = json.JSONDecoder()
    documents: list[Document] = []
    offset = _skip_whitespace(text, 0)
    while offset < len(text):
        index = len(documents) + 1
        try:
            _, end = decoder.raw_decode(text, offset)
            root, _ = _Parser(text, lines, index).value(offset)
        except json.JSONDecodeError as err:
            raise JSONStreamError(err.msg, document=index, position=lines.position(err.pos)) from err
        except RecursionError as err:  # json's decoder, or ours, which takes more frames per level
            raise JSONStreamError(
                "values are nested too deeply", document=index, position=lines.position(offset)
            ) from err
        documents.append(Document(index=index, root=root))
        offset = _skip_whitespace(text, end)
    logger.debug("read %d JSON document(s)", len(documents))
    return documents


class _Parser:
    """Builds Nodes from text already known to be valid JSON (json checked it first)."""

    def __init__(self, text: str, lines: _Lines, document: int) -> None:
        self._text = text
        self._lines = lines
        self._document = document

    def _skip(self, offset: int) -> int:
        return _skip_whitespace(self._text, offset)

    def _string(self, offset: int) -> tuple[str, int]:
        match = _STRING.match(self._text, offset)
        assert match is not None, "json accepted a string this parser does not know"
        value: str = json.loads(match.group(0))
        if _SURROGATE.search(value):
            raise JSONStreamError(
                "a string holds an unpaired surrogate (an escape in \\ud800-\\udfff without its pair), "
                "which is not valid Unicode",
                document=self._document, position=self._lines.position(offset),
            )
        return value, match.end()

    def value(self, offset: int) -> tuple[Node, int]:
        """The value starting at `offset` (no whitespace before it) and the offset after it."""
        position = self._lines.position(offset)
        char = self._text[offset]
        if char == "{":
            members, end = self._object(offset + 1)
            return Node(members, position), end
        if char == "[":
            items, end = self._array(offset + 1)
            return Node(items, position), end
        if char == '"':
            string, end = self._string(offset)
            return Node(string, position), end
        for word, literal in _LITERALS.items():
            if self._text.startswith(word, offset):
                return Node(literal, position), offset + len(word)
        return self._number(offset, position)

    def _number(self, offset: int, position: Position) -> tuple[Node, int]:
        match = _NUMBER.match(self._text, offset)
        if match is None:  # Python's json also takes NaN and Infinity; JSON does not
            raise JSONStreamError("NaN and Infinity are not JSON", document=self._document, position=position)
        literal = match.group(0)
        is_float = match.group(1) is not None or match.group(2) is not None
        return Node(float(literal) if is_float else int(literal), position), match.end()

    def _object(self, offset: int) -> tuple[dict[str, Member], int]:
        members: dict[str, Member] = {}
        offset = self._skip(offset)
        if self._text[offset] == "}":
            return members, offset + 1
        while True:
            key_position = self._lines.position(offset)
            key, offset = self._string(offset)
            offset = self._skip(self._skip(offset) + 1)  # past the colon
            node, offset = self.value(offset)
            members[key] = Member(key_position, node)
            offset = self._skip(offset)
            if self._text[offset] == "}":
                return members, offset + 1
            offset = self._skip(offset + 1)  # past the comma

    def _array(self, offset: int) -> tuple[list[Node], int]:
        items: list[Node] = []
        offset = self._skip(offset)
        if self._text[offset] == "]":
            return items, offset + 1
        while True:
            node, offset = self.value(offset)
            items.append(node)
            offset = self._skip(offset)
            if self._text[offset] == "]":
                return items, offset + 1
            offset = self._skip(offset + 1)
