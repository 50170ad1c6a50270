"""Protobuf wire bytes written by hand, where a message built around a large value would copy it
twice (into the message, then out of it): a field is its key, its length and its bytes. Used by
pachd's replies (pachd/pfs/wire.py) and the client's put-file requests (pfs.py)."""

from __future__ import annotations

SMALL = [bytes((n,)) for n in range(0x80)]
"""The varints of 0-127: one byte each."""

LEN = 2  # wire type of length-delimited fields
VARINT = 0


def key(number: int, wire_type: int) -> bytes:
    """A field's key (numbers up to 15: one byte)."""
    return bytes((number << 3 | wire_type,))


def varint(value: int) -> bytes:
    """The base-128 varint of a non-negative `value` (lengths, numbers)."""
    if value < 0x80:
        return SMALL[value]
    if value < 0x4000:
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number: int, data: bytes) -> bytes:
    """The length-delimited field `number` holding `data`."""
    return key(number, LEN) + varint(len(data)) + data
