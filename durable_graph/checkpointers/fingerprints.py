"""Whether a list item may still have the stored form it had at the last put.

A list channel (an agent's messages) is put again with every checkpoint, and serializing each of
its items every time was most of a put's cost on a long thread. The codec keeps, per thread, each
item object it serialized with that stored form and a fingerprint of the object's contents at the
time. When the same object comes back, an equal fingerprint means its contents are what they were,
so the stored form is reused; an object changed in place has another fingerprint and is serialized
again.

A fingerprint is the object's contents packed by msgpack in C, with no hook for other types: about
a tenth of what serializing a LangChain message costs. It tells apart everything the serializer
tells apart: a value's type (``1``, ``1.0`` and ``True`` pack differently), key order, and nested
lists and dicts; an enum, a dataclass, a datetime, a UUID, a nested model or a subclass of a builtin
type cannot be packed this way, and an item holding one gets no fingerprint (it is serialized at
every put, as before).

A list that only grew since the last put (the same objects first, new ones after) is checked in
one call: the fingerprint of the whole list starts with the old one exactly when the old items
are unchanged (msgpack values are self-delimiting, so the old items' bytes can only be read back
as the same items).

A fingerprint is taken before the items are serialized, so an item changed while a put encodes
it (a node running beside a background put, with ``durability="async"``) is serialized again by
the next put, unless it was changed back, before that put, to exactly what it was when the
fingerprint was taken: the stored form would then be the one caught in between.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import ormsgpack
from pydantic import BaseModel

_STRICT = (
    ormsgpack.OPT_NON_STR_KEYS
    | ormsgpack.OPT_PASSTHROUGH_SUBCLASS
    | ormsgpack.OPT_PASSTHROUGH_DATACLASS
    | ormsgpack.OPT_PASSTHROUGH_DATETIME
    | ormsgpack.OPT_PASSTHROUGH_ENUM
    | ormsgpack.OPT_PASSTHROUGH_UUID
)
_IMMUTABLE = frozenset({str, bytes, int, float, bool, type(None)})
_CONTAINERS = frozenset({dict, list, tuple})
IMMUTABLE = b""
"""The fingerprint of an immutable item: the same object always has the same contents."""


def fingerprint(item: Any) -> bytes | None:
    """The item's contents as bytes, or None when they cannot be taken this way."""
    kind = type(item)
    if kind in _IMMUTABLE:
        return IMMUTABLE
    try:
        if kind in _CONTAINERS:
            return ormsgpack.packb(item, option=_STRICT)
        if isinstance(item, BaseModel):
            extra, private = item.__pydantic_extra__, item.__pydantic_private__
            if not extra and private is None:  # most models: their fields are all there is
                return ormsgpack.packb(item.__dict__, option=_STRICT)
            return ormsgpack.packb((item.__dict__, extra, private), option=_STRICT)
    except TypeError:  # holds a value of another type (ormsgpack.MsgpackEncodeError)
        return None
    return None


def list_fingerprint(items: list[Any]) -> bytes | None:
    """The contents of ``items`` (a model's fields, any other item itself) packed one after the other
    in one call, or None when some item cannot be taken this way (``fingerprint`` then takes them
    one by one). The fingerprint of a list that grew by appends starts with the old list's."""
    for kind in set(map(type, items)):
        if not (kind in _IMMUTABLE or kind in _CONTAINERS or issubclass(kind, BaseModel)):
            return None
    for attribute in ("__pydantic_extra__", "__pydantic_private__"):
        if any(map(getattr, items, repeat(attribute), repeat(None))):
            return None  # left to ``fingerprint``, one by one
    # A model's fields (its ``__dict__``), any other item itself: mapped in C, packed in one call.
    contents = list(map(getattr, items, repeat("__dict__"), items))
    try:
        packed = ormsgpack.packb(contents, option=_STRICT)
    except TypeError:
        return None
    return packed[_ARRAY_HEADER_SIZE.get(packed[0], 1) :]


# Bytes before the first item of a packed msgpack array: array 16, array 32, else a fixarray's one.
_ARRAY_HEADER_SIZE = {0xDC: 3, 0xDD: 5}
