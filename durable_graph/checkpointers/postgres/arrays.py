"""Fast binary dumpers for the arrays the checkpointer sends as ``unnest`` parameters.

psycopg's generic list dumper inspects every element to pick its type, which made dumping the
parameters of ``put`` the largest part of its CPU time. The checkpointer knows the element types,
so it wraps its lists in ``ByteaArray``, ``TextArray`` or ``IntArray`` and these dumpers write
Postgres's binary array format directly. They are registered on ``ADAPTERS``, the adapters the
checkpointer's connections are created with, not on psycopg's global map.
"""

from __future__ import annotations

import struct
from typing import Any

import psycopg
from psycopg.adapt import AdaptersMap, Dumper
from psycopg.pq import Format

_HEADER = struct.Struct("!iiIii")  # ndim, has-nulls flag, element oid, length, lower bound
_EMPTY = struct.Struct("!iiI")
_LENGTH = struct.Struct("!i")
_NULL = _LENGTH.pack(-1)


class ByteaArray(list[bytes | None]):
    """A ``bytea[]`` parameter."""


class TextArray(list[str | None]):
    """A ``text[]`` parameter."""


class IntArray(list[int]):
    """An ``int4[]`` parameter."""


def _array(element_oid: int, items: list[Any]) -> bytes:
    """A one-dimensional array of already encoded elements (``None`` is NULL)."""
    if not items:
        return _EMPTY.pack(0, 0, element_oid)
    has_nulls = 0
    parts = [b""]
    for item in items:
        if item is None:
            has_nulls = 1
            parts.append(_NULL)
        else:
            parts.append(_LENGTH.pack(len(item)))
            parts.append(item)
    parts[0] = _HEADER.pack(1, has_nulls, element_oid, len(items), 1)
    return b"".join(parts)


class _ByteaArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1001  # bytea[]

    def dump(self, obj: Any) -> bytes:
        return _array(17, obj)


class _TextArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1009  # text[]

    def dump(self, obj: Any) -> bytes:
        return _array(25, [None if item is None else item.encode() for item in obj])


class _IntArrayDumper(Dumper):
    format = Format.BINARY
    oid = 1007  # int4[]

    def dump(self, obj: Any) -> bytes:
        return _array(23, [_LENGTH.pack(item) for item in obj])


ADAPTERS = AdaptersMap(psycopg.adapters)
ADAPTERS.register_dumper(ByteaArray, _ByteaArrayDumper)
ADAPTERS.register_dumper(TextArray, _TextArrayDumper)
ADAPTERS.register_dumper(IntArray, _IntArrayDumper)
