"""How checkpoint values become stored bytes, shared by every backend.

Values go through LangGraph's serializer protocol (``JsonPlusSerializer`` by default), so pydantic
models, dataclasses and LangChain messages round-trip. Large blobs are zlib-compressed (the type tag
gets a ``+z`` suffix). A plain ``list`` channel value is stored as content-addressed chunks: each
item is serialized on its own and named by a hash of its bytes, so an item already stored for the
thread is not stored again and a version only holds the list of hashes.

With encryption keys (``durable_graph.encryption.Keys``), every blob is encrypted after compression
(the type tag gets a further ``+aes`` suffix), and a list item is named by a keyed hash of its thread
and plaintext instead: it is still stored once per thread, while equal items are not recognisable
in the stored bytes without the key.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.checkpointers.fingerprints import fingerprint, list_fingerprint
from durable_graph.checkpointers.thread_cache import ENTRY_OVERHEAD, ThreadCache
from durable_graph.encryption import KEY_ENV, Keys
from durable_graph.errors import CorruptCheckpointError, EncryptionKeyError

COMPRESSED_SUFFIX = "+z"
ENCRYPTED_SUFFIX = "+aes"
CHUNKED_TYPE = "chunks"
"""Type tag of a value stored as a list of chunk references."""
GROUP_TYPE = "msgpack-items"
"""Type tag of a group of consecutive list items stored as one msgpack array (``Codec.group``)."""
EMPTY_TYPE = "empty"
"""Type tag of a channel version that has no value (the channel was cleared)."""
DEFAULT_COMPRESS_ABOVE = 16 * 1024
HASH_BYTES = 16
WRITTEN_ITEM_BYTES = 256
"""A pending write of a list is stored as items (``Codec.encode_write``) when they average at least
this many bytes serialized: a node's new messages, say. Smaller items cost less as one row."""
WHOLE_LIST_MAX_BYTES = 2048
"""A list of about this many bytes or less that does not grow a list of items put before it in its
channel is stored whole (``Codec._encode_list``)."""
INLINE_MAX_CHARS = 256
INLINE_MAX_ITEMS = 32
INLINE_VERSIONS = "dg_inline_versions"
"""Key of a stored checkpoint body that holds the versions of the values stored in it (``inlined``)."""
_INLINE_TYPES = (bool, float, type(None))


StoredForm = tuple[bytes, str, bytes]
"""A list item as stored: ``(address, type, data)``."""
SeenItem = tuple[Any, bytes, StoredForm]
"""An item object serialized before, its fingerprint then, and its stored form."""
ListRecord = tuple[list[Any], bytes, list[StoredForm] | None]
"""The items of a list as last encoded, their ``list_fingerprint`` then, and their stored forms
(None: the list was stored whole)."""


def inlined(value: Any) -> bool:
    """Whether a channel value is stored in the checkpoint itself rather than as a blob of its
    version: ``None``, a bool, a float, a 64-bit int or a string of at most 256 characters, as
    LangGraph's ``PostgresSaver`` keeps primitive values, or a list of at most 32 such values whose
    strings hold at most 256 characters in all. Repeated by every checkpoint (a few bytes), it saves
    a row per version written and a lookup per channel read; and a short list of numbers or names,
    often replaced whole at every step, costs no items to store and look up."""
    if type(value) is list:
        return len(value) <= INLINE_MAX_ITEMS and _inlined_items(value)
    return _inlined_primitive(value)


def _inlined_primitive(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        return len(value) <= INLINE_MAX_CHARS
    if kind is int:
        return -(2**63) <= value < 2**63
    return kind in _INLINE_TYPES


def _inlined_items(values: list[Any]) -> bool:
    chars = 0
    for value in values:
        if not _inlined_primitive(value):
            return False
        if type(value) is str:
            chars += len(value)
    return chars <= INLINE_MAX_CHARS


@dataclass(frozen=True, slots=True)
class Chunk:
    """One serialized list item, named by the hash of its type and bytes."""

    hash: bytes
    type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class StoredValue:
    """A channel value as stored: inline ``(type, data)``, or ``CHUNKED_TYPE`` with ``refs``."""

    type: str
    data: bytes | None
    refs: tuple[bytes, ...] = ()


class Codec:
    """Serializes values for storage and back; one instance is shared by sync and async paths."""

    def __init__(
        self,
        serde: SerializerProtocol,
        *,
        compress_above: int | None = DEFAULT_COMPRESS_ABOVE,
        chunk_lists: bool = True,
        whole_lists_up_to: int = WHOLE_LIST_MAX_BYTES,
        keys: Keys | None = None,
        memo_bytes: int = 0,
    ) -> None:
        self.serde = serde
        self.compress_above = compress_above
        self.chunk_lists = chunk_lists
        self.whole_lists_up_to = whole_lists_up_to
        self.keys = keys
        self.memo: ThreadCache[tuple[str, bytes], StoredForm] | None = (
            ThreadCache(memo_bytes, _memo_entry_size) if memo_bytes else None
        )
        self.seen: ThreadCache[int, SeenItem] | None = (
            ThreadCache(memo_bytes, _seen_entry_size, replace=True) if memo_bytes else None
        )
        self.lists: ThreadCache[tuple[str, str], ListRecord] | None = (
            ThreadCache(memo_bytes, _list_entry_size, replace=True) if memo_bytes else None
        )

    def forget(self, thread_ids: Iterable[str]) -> None:
        """Drops what the write caches keep of these threads (deleted)."""
        thread_ids = list(thread_ids)
        for cache in (self.memo, self.seen, self.lists):
            if cache is not None:
                cache.forget(thread_ids)

    # -- single blobs -------------------------------------------------------------------------

    def dumps(self, value: Any, *, compress_from: int = 0) -> tuple[str, bytes]:
        """``(type, bytes)`` as stored: serialized, compressed when larger than ``compress_above``
        (and than ``compress_from``), encrypted with keys."""
        return self._seal(*self._compressed(*self.serde.dumps_typed(value), compress_from))

    def encode_write(
        self, value: Any, thread_id: str, slot: tuple[str, str]
    ) -> tuple[str, bytes, list[StoredForm]]:
        """A pending write as stored: ``(type, data, items)``. A list of items of ``WRITTEN_ITEM_BYTES``
        or more on average (a node's new messages, say) is stored as its items' names
        (``CHUNKED_TYPE``, the names as ``data``) and ``items``, stored as list items are: the list
        the write is added to then names the same items, stored once for both. Not when the list
        last put in ``slot`` (namespace, channel) was stored whole: the write is whole too."""
        type_, data = self.serde.dumps_typed(value)
        as_items = (
            type(value) is list
            and value
            and len(data) >= WRITTEN_ITEM_BYTES * len(value)
            and not self._stored_whole(thread_id, slot)
        )
        if self.chunk_lists and as_items:
            items = self._encode_items(value, thread_id)
            return CHUNKED_TYPE, b"".join(item[0] for item in items), items
        return (*self._seal(*self._compressed(type_, data)), [])

    def _compressed(self, type_: str, data: bytes, compress_from: int = 0) -> tuple[str, bytes]:
        if self.compress_above is not None and len(data) > max(self.compress_above, compress_from):
            packed = zlib.compress(data, 1)
            if len(packed) < len(data):
                return type_ + COMPRESSED_SUFFIX, packed
        return type_, data

    def _seal(self, type_: str, data: bytes) -> tuple[str, bytes]:
        if self.keys is None:
            return type_, data
        return type_ + ENCRYPTED_SUFFIX, self.keys.encrypt(data)

    def loads(self, type_: str, data: bytes | None, *, thread_id: str, checkpoint_id: str | None) -> Any:
        try:
            return self.serde.loads_typed(self._unsealed(type_, data))
        except CorruptCheckpointError:
            raise
        except EncryptionKeyError as exc:
            raise CorruptCheckpointError(thread_id, checkpoint_id, f"blob of type {type_!r}: {exc}") from exc
        except Exception as exc:
            raise CorruptCheckpointError(
                thread_id, checkpoint_id, f"blob of type {type_!r}: {type(exc).__name__}: {exc}"
            ) from exc

    def opened(
        self, names: Sequence[bytes], types: Sequence[str], data: Sequence[bytes]
    ) -> dict[bytes, tuple[str, bytes]]:
        """Stored list items (their names, types and bytes) by name as the serializer made them
        (decrypted and decompressed), to be kept and decoded without opening them again; an item
        that cannot be opened stays as stored, so decoding it names what is wrong and where."""
        opened = dict(zip(names, zip(types, data, strict=True), strict=True))
        sealed = (COMPRESSED_SUFFIX, ENCRYPTED_SUFFIX)
        if not any(type_.endswith(sealed) for type_ in set(types)):
            return opened
        unsealed = self._unsealed
        for name, type_, stored in zip(names, types, data, strict=True):
            if type_.endswith(sealed):
                try:  # noqa: SIM105 - suppress() costs a context manager per item
                    opened[name] = unsealed(type_, stored)
                except Exception:  # left as stored: decoding it names what is wrong
                    pass
        return opened

    def _unsealed(self, type_: str, data: bytes | None) -> tuple[str, bytes]:
        """The serializer's ``(type, bytes)`` of a stored blob: decrypted and decompressed."""
        if type_.endswith(ENCRYPTED_SUFFIX):
            type_, data = type_[: -len(ENCRYPTED_SUFFIX)], self._open(data or b"")
        if type_.endswith(COMPRESSED_SUFFIX):
            type_ = type_[: -len(COMPRESSED_SUFFIX)]
            data = zlib.decompress(data or b"")
        return type_, data or b""

    def _open(self, data: bytes) -> bytes:
        if self.keys is None:
            raise EncryptionKeyError(f"it is encrypted and no key is given: set {KEY_ENV}")
        return self.keys.decrypt(data)

    def item_address(self, thread_id: str, type_: str, data: bytes) -> bytes:
        """The name of a list item of ``thread_id`` whose plain stored form is ``(type_, data)``."""
        if self.keys is not None:
            return self.keys.address(thread_id, type_.encode() + b"\0" + data)
        return hashlib.blake2b(type_.encode() + b"\0" + data, digest_size=HASH_BYTES).digest()

    # -- channel values -----------------------------------------------------------------------

    def encode_value(self, value: Any, thread_id: str) -> tuple[StoredValue, list[Chunk]]:
        """Encode one channel value; list values become chunk references plus their chunks."""
        stored, items = self._encode_value(value, thread_id)
        return stored, [Chunk(*item) for item in items]

    def encode_channels(
        self, values: Mapping[str, Any], versions: Iterable[str], thread_id: str
    ) -> tuple[dict[str, StoredValue], dict[bytes, Chunk]]:
        """Encode the given channels; a channel absent from ``values`` is stored as empty."""
        stored, items = self.encode_channel_items(values, versions, thread_id)
        return stored, {hash_: Chunk(hash_, *item) for hash_, item in items.items()}

    def encode_channel_items(
        self, values: Mapping[str, Any], versions: Iterable[str], thread_id: str, checkpoint_ns: str = ""
    ) -> tuple[dict[str, StoredValue], dict[bytes, tuple[str, bytes]]]:
        """``encode_channels`` with each chunk as ``hash: (type, data)``, without ``Chunk`` objects."""
        stored: dict[str, StoredValue] = {}
        chunks: dict[bytes, tuple[str, bytes]] = {}
        for channel in versions:
            if channel in values:
                stored[channel], items = self._encode_value(
                    values[channel], thread_id, (checkpoint_ns, channel)
                )
                for hash_, type_, data in items:
                    chunks[hash_] = (type_, data)
            else:
                stored[channel] = StoredValue(EMPTY_TYPE, None)
        return stored, chunks

    def _encode_value(
        self, value: Any, thread_id: str, slot: tuple[str, str] = ("", "")
    ) -> tuple[StoredValue, list[StoredForm]]:
        """``slot``: the namespace and channel the value is put in, where the list it grew from was."""
        if self.chunk_lists and type(value) is list and value:
            items = self._encode_list(value, thread_id, slot)
            if items is not None:
                return StoredValue(CHUNKED_TYPE, None, tuple(item[0] for item in items)), items
        type_, data = self.dumps(value)
        return StoredValue(type_, data), []

    def _encode_list(
        self, values: list[Any], thread_id: str, slot: tuple[str, str]
    ) -> list[StoredForm] | None:
        """``(address, type, data)`` of each item, as stored, or None for a list to store whole. A list
        that only grew since it was last encoded in ``slot`` as items, its old items unchanged
        (``fingerprints``), keeps their stored forms (``lists``): only the new items are encoded.
        Another short one (``whole_lists_up_to`` bytes or less) that is not the first encoded there
        (a few retrieved documents replaced at every step, a sliding window) is stored whole: it
        then costs no item rows, no row of names and no lookup on a first read, and a list
        rewritten at every step shares no items with the next one anyway. A first list is stored as
        items, since it may grow as a message list does."""
        if self.lists is None:
            return self._encode_items(values, thread_id)
        # Taken before encoding: a change made meanwhile makes the next put encode the items again.
        packed = list_fingerprint(values)
        record = self.lists.of(thread_id).get(slot)
        grew = (
            packed is not None
            and record is not None
            and len(values) >= len(record[0])
            and all(map(operator.is_, values, record[0]))
            and packed.startswith(record[1])
        )
        if grew and record is not None and record[2] is not None:
            items: list[StoredForm] | None = record[2] + self._encode_items(
                values[len(record[0]) :], thread_id
            )
        elif record is not None and packed is not None and len(packed) <= self.whole_lists_up_to:
            items = None
        else:
            items = self._encode_items(values, thread_id)
        if packed is not None:
            self.lists.add(thread_id, {slot: (list(values), packed, items)})
        return items

    def _stored_whole(self, thread_id: str, slot: tuple[str, str]) -> bool:
        """Whether the list last encoded in ``slot`` was stored whole."""
        record = self.lists.of(thread_id).get(slot) if self.lists is not None else None
        return record is not None and record[2] is None

    def _encode_items(self, values: list[Any], thread_id: str) -> list[StoredForm]:
        """``(address, type, data)`` of each item, as stored. With a list that grows by appends every
        put would otherwise serialize, compress, encrypt and name every item again, so:

        - an item object this codec serialized for the thread before, with the same contents
          (``fingerprints``), keeps its stored form without being serialized (``seen``);
        - an item whose serialized form this codec stored for the thread before is not compressed,
          encrypted or named again (``memo``)."""
        dumps_typed = self.serde.dumps_typed
        memo = self.memo.of(thread_id) if self.memo is not None else {}
        seen = self.seen.of(thread_id) if self.seen is not None else {}
        new: dict[tuple[str, bytes], StoredForm] = {}
        new_seen: dict[int, SeenItem] = {}
        items = []
        for item in values:
            # Taken before serializing: a change made meanwhile makes the next put serialize again.
            contents = fingerprint(item) if self.seen is not None else None
            known = seen.get(id(item))
            if known is not None and known[0] is item and contents is not None and known[1] == contents:
                items.append(known[2])
                continue
            serialized = dumps_typed(item)
            stored = memo.get(serialized) or new.get(serialized)
            if stored is None:
                stored = new[serialized] = self._stored_item(thread_id, *serialized)
            items.append(stored)
            if contents is not None:
                new_seen[id(item)] = (item, contents, stored)
        if self.memo is not None:
            self.memo.add(thread_id, new)
        if self.seen is not None:
            self.seen.add(thread_id, new_seen)
        return items

    def group(self, items: Sequence[tuple[str, bytes]], thread_id: str) -> StoredForm | None:
        """Consecutive list items (as stored) as one stored item of ``GROUP_TYPE``: their msgpack
        array, compressed as one and named as items are; None unless they are all msgpack."""
        array = self.items_array(list(items))
        return None if array is None else self._stored_item(thread_id, GROUP_TYPE, array)

    def _stored_item(self, thread_id: str, type_: str, data: bytes) -> StoredForm:
        type_, data = self._compressed(type_, data)
        return self.item_address(thread_id, type_, data), *self._seal(type_, data)

    def decode_value(
        self,
        stored: StoredValue,
        chunks: Mapping[bytes, tuple[str, bytes]],
        *,
        thread_id: str,
        checkpoint_id: str | None,
    ) -> Any:
        """Decode a stored value; ``chunks`` maps hash to ``(type, data)`` for chunked values."""
        if stored.type != CHUNKED_TYPE:
            return self.loads(stored.type, stored.data, thread_id=thread_id, checkpoint_id=checkpoint_id)
        return self.decode_items(stored.refs, chunks, thread_id=thread_id, checkpoint_id=checkpoint_id)[0]

    def decode_items(
        self,
        names: Sequence[bytes],
        chunks: Mapping[bytes, tuple[str, bytes]],
        *,
        thread_id: str,
        checkpoint_id: str | None,
        groups: Sequence[bytes] = (),
        grouped: int = 0,
    ) -> tuple[list[Any], bytes | None]:
        """The list whose items are named ``names`` in ``chunks`` (hash to ``(type, data)``), and
        its items as one msgpack array (``items_array``) when they are all msgpack. When ``chunks``
        lacks one of the first ``grouped`` items, those come from the arrays of ``groups``."""
        try:
            found = list(map(chunks.__getitem__, names))
        except KeyError:
            position, missing = next((i, name) for i, name in enumerate(names) if name not in chunks)
            if position < grouped:
                return self.decode_grouped(
                    groups, grouped, names[grouped:], chunks, thread_id=thread_id, checkpoint_id=checkpoint_id
                )
            raise CorruptCheckpointError(
                thread_id, checkpoint_id, f"list item {bytes(missing).hex()} is missing"
            ) from None
        array = self.items_array(found)
        if array is not None:
            try:
                return self.loads_array(array), array
            except Exception:  # decoded one by one below, which names what is wrong
                pass
        loads = partial(self.loads, thread_id=thread_id, checkpoint_id=checkpoint_id)
        return [loads(type_, data) for type_, data in found], None

    def decode_grouped(
        self,
        groups: Sequence[bytes],
        grouped: int,
        after: Sequence[bytes],
        chunks: Mapping[bytes, tuple[str, bytes]],
        *,
        thread_id: str,
        checkpoint_id: str | None,
    ) -> tuple[list[Any], bytes | None]:
        """``decode_items`` of a list whose first ``grouped`` items are read from ``groups`` and whose
        items after them are named ``after``: the groups' arrays and the items after them joined as
        one array, decoded at once (which checks that the groups hold ``grouped`` items: the array's
        count is the list's length)."""

        def corrupt(what: str) -> CorruptCheckpointError:
            return CorruptCheckpointError(thread_id, checkpoint_id, what)

        fetched = list(map(chunks.get, groups))
        opened = [group for group in fetched if group is not None and group[0] == GROUP_TYPE]
        if len(opened) < len(groups):  # one is missing, or still sealed: opening it failed
            opened = [
                self._opened_group(name, group, corrupt) for name, group in zip(groups, fetched, strict=True)
            ]
        # A short group's items are copied: cheaper than a view, which pays off for a long one.
        arrays = [
            data[_ARRAY_HEADER:] if len(data) < _VIEW_FROM else memoryview(data)[_ARRAY_HEADER:]
            for _, data in opened
        ]
        try:
            items_after = [chunks[name] for name in after]
        except KeyError as exc:
            raise corrupt(f"list item {bytes(exc.args[0]).hex()} is missing") from None
        after_array = self.items_array(items_after, at_least=0)
        try:
            if after_array is not None:
                arrays.append(memoryview(after_array)[_ARRAY_HEADER:])
                array = _items_array(grouped + len(after), arrays)
                return self.loads_array(array), array
            values = self.loads_array(_items_array(grouped, arrays))
        except Exception as exc:
            raise corrupt(f"the list's item groups did not decode: {type(exc).__name__}: {exc}") from exc
        loads = partial(self.loads, thread_id=thread_id, checkpoint_id=checkpoint_id)
        return values + [loads(type_, data) for type_, data in items_after], None

    def _opened_group(
        self,
        name: bytes,
        group: tuple[str, bytes] | None,
        corrupt: Callable[[str], CorruptCheckpointError],
    ) -> tuple[str, bytes]:
        """A group as fetched, opened if it is still sealed (opening it failed before)."""
        if group is None:
            raise corrupt(f"list item group {bytes(name).hex()} is missing")
        if group[0] != GROUP_TYPE:
            try:
                group = self._unsealed(*group)
            except Exception as exc:
                raise corrupt(f"list item group {bytes(name).hex()}: {type(exc).__name__}: {exc}") from exc
            if group[0] != GROUP_TYPE:
                raise corrupt(f"list item {bytes(name).hex()} is not a group (type {group[0]!r})")
        return group

    def items_array(self, items: list[tuple[str, bytes]], at_least: int = 2) -> bytes | None:
        """Items that are all msgpack (as ``JsonPlusSerializer`` makes them) as one msgpack array, to
        decode in one call instead of one per item, with the same result for each; else None (and
        for fewer than ``at_least`` items, which cost no more decoded one by one)."""
        if len(items) < at_least or type(self.serde) is not JsonPlusSerializer:
            return None
        if set(map(_type_of, items)) - {"msgpack"}:
            try:
                items = [self._unsealed(type_, data) for type_, data in items]
            except Exception:
                return None
            if set(map(_type_of, items)) - {"msgpack"}:
                return None
        return _items_array(len(items), map(_data_of, items))

    @staticmethod
    def leading_array(array: bytes, count: int, after: Sequence[tuple[str, bytes]]) -> bytes | None:
        """The ``items_array`` of the first ``count`` items of the list ``array`` holds, whose items
        after those are ``after`` (as ``items_array`` took them); None when one of those is not
        msgpack as it stands (the array was then built from items opened on the way)."""
        if any(type_ != "msgpack" for type_, _ in after):
            return None
        end = len(array) - sum(len(data) for _, data in after)
        return _items_array(count, [memoryview(array)[_ARRAY_HEADER:end]])

    def loads_array(self, array: bytes) -> list[Any]:
        """The list an ``items_array`` holds."""
        decoded = self.serde.loads_typed(("msgpack", array))
        if not isinstance(decoded, list) or len(decoded) != int.from_bytes(array[1:5], "big"):
            raise ValueError("the items did not decode as one list")
        return decoded


_ARRAY_HEADER = 5
"""Bytes before the first item of an ``items_array``: msgpack's array 32 marker and its count."""
_VIEW_FROM = 2048
"""Bytes from which a group's items are read through a view rather than copied."""


def _items_array(count: int, items: Iterable[bytes | memoryview]) -> bytes:
    """``count`` msgpack values, packed one after the other in ``items``, as one msgpack array
    (joined at once: a second copy of a long list's bytes cost more than decoding its short items)."""
    return b"".join(chain((b"\xdd" + count.to_bytes(4, "big"),), items))


_type_of = operator.itemgetter(0)
_data_of = operator.itemgetter(1)


_REFS_BLOCK = 64
"""Item names unpacked at a time: in C, a long list splits in a third of the time of slicing."""


@functools.cache
def _names_struct(count: int) -> struct.Struct:
    """Unpacks ``count`` item names (a struct per count up to ``_REFS_BLOCK``)."""
    return struct.Struct(f"{HASH_BYTES}s" * count)


def split_refs(refs: bytes) -> list[bytes]:
    """The item names a ``refs`` value concatenates."""
    refs = bytes(refs)
    count, torn = divmod(len(refs), HASH_BYTES)
    in_blocks = count - count % _REFS_BLOCK
    last = _names_struct(count - in_blocks).unpack_from(refs, in_blocks * HASH_BYTES)
    if in_blocks:
        blocks = _names_struct(_REFS_BLOCK).iter_unpack(memoryview(refs)[: in_blocks * HASH_BYTES])
        names = [*chain.from_iterable(blocks), *last]
    else:
        names = list(last)
    if torn:  # not a whole name: kept as it is, so that looking it up names what is wrong
        names.append(refs[count * HASH_BYTES :])
    return names


def _memo_entry_size(serialized: tuple[str, bytes], stored: StoredForm) -> int:
    return len(serialized[1]) + len(stored[2]) + ENTRY_OVERHEAD


def _list_entry_size(_: tuple[str, str], record: ListRecord) -> int:
    # The packed contents, about as large again in objects, and the list of stored forms.
    return 2 * len(record[1]) + 8 * len(record[2] or ()) + ENTRY_OVERHEAD


def _seen_entry_size(_: int, seen: SeenItem) -> int:
    # The item object itself is held too: counted as about its fingerprint's size again.
    return 2 * len(seen[1]) + ENTRY_OVERHEAD
