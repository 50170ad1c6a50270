"""Concatenated JSON documents with the positions of keys and values."""

from __future__ import annotations

import pytest

from pachctl.jsonstream import JSONStreamError, Member, Node, Position, read_documents


def test_positions_of_keys_and_values() -> None:
    [document] = read_documents('{\n  "a": [1, {"b": true}],\n  "c": "x"\n}')
    root = document.root
    assert root.position == Position(1, 1)
    assert isinstance(root.value, dict)
    a = root.value["a"]
    assert a.key_position == Position(2, 3)
    assert a.node.position == Position(2, 8)
    assert isinstance(a.node.value, list)
    inner = a.node.value[1]
    assert isinstance(inner.value, dict)
    assert inner.value["b"].node == Node(True, Position(2, 18))
    assert root.value["c"] == Member(Position(3, 3), Node("x", Position(3, 8)))


def test_scalars_keep_their_json_types() -> None:
    [document] = read_documents('[1, -2.5, 3e2, "s", true, false, null, "\\u00e9\\"\\\\"]')
    assert isinstance(document.root.value, list)
    values = [node.value for node in document.root.value]
    assert values == [1, -2.5, 300.0, "s", True, False, None, 'é"\\']
    assert [node.kind for node in document.root.value] == [
        "number", "number", "number", "string", "boolean", "boolean", "null", "string",
    ]


def test_documents_are_numbered_from_one() -> None:
    documents = read_documents('{} [] "x"\n7')
    assert [d.index for d in documents] == [1, 2, 3, 4]
    assert documents[3].root.position == Position(2, 1)


def test_empty_containers() -> None:
    [document] = read_documents('{ "a" : { } , "b" : [ ] }')
    assert isinstance(document.root.value, dict)
    assert document.root.value["a"].node.value == {}
    assert document.root.value["b"].node.value == []


@pytest.mark.parametrize(
    ("text", "document", "line", "column"),
    [
        ("{", 1, 1, 2),
        ('{"a" 1}', 1, 1, 6),
        ("{}\n{,}", 2, 2, 2),
        ("[1 2]", 1, 1, 4),
        ("{} }", 2, 1, 4),
        ("\n\n  [Infinity]", 1, 3, 4),
    ],
)
def test_syntax_errors(text: str, document: int, line: int, column: int) -> None:
    with pytest.raises(JSONStreamError) as caught:
        read_documents(text)
    assert (caught.value.document, caught.value.position) == (document, Position(line, column))


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(JSONStreamError):
        read_documents("[" * 100_000)
