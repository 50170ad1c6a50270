"""Pipeline and job manifests: JSON text into CreatePipelineRequest / CreateJobRequest.

A manifest is one or more JSON objects written one after another (not an
array). Beyond protobuf's JSON mapping it accepts what v1.2 manifests use:

* field names in snake_case or camelCase (`parallelism_spec`, `parallelismSpec`);
* numbers written as strings (`"constant": "1"`);
* `method` as an alias string (map, reduce, incremental_reduce, global) or an
  object of `partition` and `incremental`; an input without one gets `map`;
* the old top-level `"parallelism": "4"`, meaning CONSTANT 4 pods.

Every error is a ManifestError naming the object in the stream, the line and
column, and the field. These are pure functions: callers read the text.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from pachyderm_client.pps import METHOD_ALIASES, method
from pachctl.jsonstream import Document, JSONStreamError, Member, Node, Position, read_documents
from pachyderm_client.proto import pps_pb2

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=Message)

_INTEGER = re.compile(r"-?\d+")
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)
_ENUM_ALIASES = {("pachyderm.pps.Incremental", "FILE"): "FULL"}  # the v1.2 docs' spelling
_LEGACY_PARALLELISM = "parallelism"


class ManifestError(ValueError):
    """A manifest is malformed; says which object, where, and which field."""

    def __init__(
        self,
        reason: str,
        *,
        document: int | None = None,
        position: Position | None = None,
        field: str = "",
        source: str = "",
    ) -> None:
        self.reason = reason
        self.source = source
        self.document = document
        self.position = position
        self.field = field
        self.line = position.line if position else None
        self.column = position.column if position else None
        super().__init__(self._describe())

    def with_source(self, source: str) -> ManifestError:
        """The same error, naming the file or URL the manifest came from."""
        return ManifestError(
            self.reason,
            document=self.document,
            position=self.position,
            field=self.field,
            source=source,
        )

    def _describe(self) -> str:
        where = [self.source] if self.source else []
        if self.document is not None:
            where.append(f"object {self.document}")
        if self.position is not None:
            where.append(str(self.position))
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


def read_pipeline_requests(text: str) -> list[pps_pb2.CreatePipelineRequest]:
    """Every pipeline in a manifest stream, in order (possibly none)."""
    return [
        _request(document, pps_pb2.CreatePipelineRequest) for document in _documents(text)
    ]


def read_job_request(text: str) -> pps_pb2.CreateJobRequest:
    """The one job spec in a manifest (create-job, run-pipeline -f)."""
    documents = _documents(text)
    if len(documents) != 1:
        raise ManifestError(f"expected exactly one job spec, found {len(documents)}")
    return _request(documents[0], pps_pb2.CreateJobRequest)


def _documents(text: str) -> list[Document]:
    try:
        return read_documents(text)
    except JSONStreamError as err:
        raise ManifestError(
            f"syntax error: {err.reason}", document=err.document, position=err.position
        ) from err


def _request(document: Document, cls: type[M]) -> M:
    """One request from one document: legacy fields first, then the generic mapping."""
    root = document.root
    if not isinstance(root.value, dict):
        raise ManifestError(
            f"expected a JSON object, found {root.kind}"
            + (" (write the objects one after another, not in an array)" if root.kind == "array" else ""),
            document=document.index,
            position=root.position,
        )
    members = dict(root.value)
    legacy = members.pop(_LEGACY_PARALLELISM, None)
    request = cls()
    _Converter(document.index).fill(request, members, "")
    if legacy is not None:
        _apply_legacy_parallelism(request, legacy, document.index)
    for pipeline_or_job_input in getattr(request, "inputs", ()):
        if not pipeline_or_job_input.HasField("method"):
            pipeline_or_job_input.method.CopyFrom(method())
    return request


def _apply_legacy_parallelism(request: Message, member: Member, document: int) -> None:
    """The pre-1.2 `"parallelism": N` field: CONSTANT N pods."""
    if request.HasField("parallelism_spec"):
        raise ManifestError(
            "give either parallelism or parallelism_spec, not both",
            document=document,
            position=member.key_position,
            field=_LEGACY_PARALLELISM,
        )
    constant_field = _field_lookup(pps_pb2.ParallelismSpec())["constant"]
    converter = _Converter(document)
    constant = converter.scalar(constant_field, member.node, _LEGACY_PARALLELISM)
    if constant is not None:
        spec = getattr(request, "parallelism_spec")
        spec.strategy = pps_pb2.ParallelismSpec.CONSTANT
        spec.constant = constant


def _field_lookup(message: Message) -> dict[str, FieldDescriptor]:
    """A message's fields by proto name and by JSON (camelCase) name."""
    lookup: dict[str, FieldDescriptor] = {}
    # The stubs type descriptors as a union of the pure-Python and upb classes.
    for field in cast("list[FieldDescriptor]", message.DESCRIPTOR.fields):
        lookup[field.name] = field
        lookup[field.json_name] = field
    return lookup


class _Converter:
    """Fills protobuf messages from positioned JSON Nodes, checking every field."""

    def __init__(self, document: int) -> None:
        self._document = document

    def error(self, reason: str, position: Position, field: str) -> ManifestError:
        return ManifestError(reason, document=self._document, position=position, field=field)

    def fill(self, message: Message, members: dict[str, Member], path: str) -> None:
        """Sets each member on `message`; unknown names are an error."""
        lookup = _field_lookup(message)
        for key, member in members.items():
            name = f"{path}.{key}" if path else key
            field = lookup.get(key)
            if field is None:
                known = ", ".join(f.name for f in message.DESCRIPTOR.fields)
                where = f" in {path}" if path else ""
                raise self.error(
                    f"unknown field {_quote(key)}{where} (known fields: {known})",
                    member.key_position,
                    name,
                )
            self._set(message, field, member.node, name)

    def _set(self, message: Message, field: FieldDescriptor, node: Node, path: str) -> None:
        if node.value is None:
            return  # null means "not set", as in protobuf's JSON mapping
        if _is_map(field):
            self._set_map(message, field, node, path)
        elif field.is_repeated:
            self._set_repeated(message, field, node, path)
        elif field.message_type is not None:
            self.message(getattr(message, field.name), node, path)
        else:
            setattr(message, field.name, self.scalar(field, node, path))

    def _set_repeated(
        self, message: Message, field: FieldDescriptor, node: Node, path: str
    ) -> None:
        items = self.expect(node, list, "an array", path)
        target = getattr(message, field.name)
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]"
            if field.message_type is not None:
                self.message(target.add(), item, item_path)
            elif item.value is None:
                raise self.error(f"{item_path} may not be null", item.position, item_path)
            else:
                target.append(self.scalar(field, item, item_path))

    def _set_map(self, message: Message, field: FieldDescriptor, node: Node, path: str) -> None:
        members = self.expect(node, dict, "an object", path)
        entry = field.message_type
        assert entry is not None
        key_field, value_field = entry.fields
        target = getattr(message, field.name)
        for key, member in members.items():
            entry_path = f"{path}.{key}"
            map_key = self.scalar(key_field, Node(key, member.key_position), entry_path)
            if value_field.message_type is not None:
                self.message(target[map_key], member.node, entry_path)
            else:
                target[map_key] = self.scalar(value_field, member.node, entry_path)

    def message(self, message: Message, node: Node, path: str) -> None:
        """Fills a sub-message; a Method may also be an alias string."""
        if message.DESCRIPTOR.full_name == "pachyderm.pps.Method" and isinstance(node.value, str):
            self._method_alias(message, node, path)
            return
        members = self.expect(node, dict, "an object", path)
        message.SetInParent()
        self.fill(message, members, path)

    def _method_alias(self, message: Message, node: Node, path: str) -> None:
        alias = str(node.value)
        if alias.lower() not in METHOD_ALIASES:
            known = ", ".join(METHOD_ALIASES)
            raise self.error(
                f"unknown method alias {_quote(alias)} for {path} (use one of {known}, "
                'or an object with "partition" and "incremental")',
                node.position,
                path,
            )
        message.CopyFrom(method(alias.lower()))

    def expect(self, node: Node, kind: type[Any], name: str, path: str) -> Any:
        """node.value if it is of `kind`, else an error naming the field."""
        if not isinstance(node.value, kind):
            raise self.error(f"{path} must be {name}, not {_a(node.kind)}", node.position, path)
        return node.value

    def scalar(self, field: FieldDescriptor, node: Node, path: str) -> Any:
        """The Python value for a scalar or enum field."""
        cpp = field.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_STRING:
            if field.type == FieldDescriptor.TYPE_BYTES:
                return self._bytes(node, path)
            return self.expect(node, str, "a string", path)
        if cpp == FieldDescriptor.CPPTYPE_BOOL:
            return self.expect(node, bool, "true or false", path)
        if cpp == FieldDescriptor.CPPTYPE_ENUM:
            return self._enum(field, node, path)
        if cpp in _FLOATS:
            return self._float(node, path)
        return self._integer(cpp, node, path)

    def _integer(self, cpp: int, node: Node, path: str) -> int:
        value = node.value
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
            value = int(value.strip())
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(
                f"{path} must be an integer (a number or a string of digits), not {_a(node.kind)}",
                node.position,
                path,
            )
        low, high = _INT_RANGES[cpp]
        if not low <= value <= high:
            raise self.error(f"{path} must be between {low} and {high}", node.position, path)
        return value

    def _float(self, node: Node, path: str) -> float:
        value = node.value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise self.error(f"{path} must be a number, not {_a(node.kind)}", node.position, path)

    def _enum(self, field: FieldDescriptor, node: Node, path: str) -> int:
        enum = field.enum_type
        assert enum is not None
        value = node.value
        if isinstance(value, int) and not isinstance(value, bool):
            if value in enum.values_by_number:
                return value
        elif isinstance(value, str):
            name = _ENUM_ALIASES.get((enum.full_name, value.upper()), value.upper())
            by_upper = {v.name.upper(): v.number for v in enum.values}
            if name in by_upper:
                return by_upper[name]
        known = ", ".join(v.name for v in enum.values)
        raise self.error(f"{path} must be one of {known}", node.position, path)

    def _bytes(self, node: Node, path: str) -> bytes:
        text = self.expect(node, str, "a base64 string", path)
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            raise self.error(f"{path} must be base64", node.position, path) from None


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _quote(text: str) -> str:
    """`text` in double quotes, control characters escaped (as JSON writes it)."""
    return json.dumps(text, ensure_ascii=False)


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


__all__: Sequence[str] = ["ManifestError", "read_job_request", "read_pipeline_requests"]
