"""What a checkpointer keeps in memory per thread about the list items it has stored or read.

A list item is stored once per thread under a name derived from its content (``codec``), and a
stored item never changes: the same thread and name always mean the same bytes, and the same
serialized item always gets the same name. So a client can keep what it has seen and trust it
without asking the database:

- the stored items by name, opened (decrypted and decompressed) as the serializer made them (the
  Postgres checkpointer's reads): a read then fetches only the checkpoint's rows and the items it
  does not hold, and decodes them without opening them again;
- the stored form of each serialized item (the codec's writes): an item written again with the next
  checkpoint is not compressed, encrypted and named again;
- the item objects the codec serialized, with a fingerprint of their contents and their stored form
  (``fingerprints``): an unchanged object written again is not serialized again.

What is read or written always comes from bytes: the item objects are only compared with their
fingerprints, never handed out, so a value changed in place cannot leak into what is stored or
read. Deleting a thread forgets it; an item whose row another process deleted (``prune``) is only
ever asked for by a checkpoint that no longer exists.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

DEFAULT_CACHE_BYTES = 64 * 1024 * 1024
ENTRY_OVERHEAD = 120
"""About what a cached entry costs in Python objects beyond its bytes."""

K = TypeVar("K")
V = TypeVar("V")


class ThreadCache(Generic[K, V]):
    """Entries by thread and key; past ``max_bytes`` (as ``size`` counts them) the least recently
    used threads are dropped: a thread is the unit, since a read or write wants all its items."""

    def __init__(self, max_bytes: int, size: Callable[[K, V], int], *, replace: bool = False) -> None:
        """``replace``: an entry added under a key the thread has replaces it (else it is kept, for
        entries that never change under their key)."""
        self._max_bytes = max_bytes
        self._size = size
        self._replace = replace
        self._threads: OrderedDict[str, dict[K, V]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def holds(self, thread_id: str) -> bool:
        return thread_id in self._threads

    def of(self, thread_id: str) -> dict[K, V]:
        """The thread's entries: to look up in, not to change or keep (it grows)."""
        with self._lock:
            entries = self._threads.get(thread_id)
            if entries is None:
                return {}
            self._threads.move_to_end(thread_id)
            return entries

    def add(self, thread_id: str, entries: Mapping[K, V]) -> None:
        """Keeps ``entries`` of the thread; a thread whose entries alone exceed the size is not kept."""
        if not self._max_bytes or not entries:
            return
        with self._lock:
            cached = self._held(thread_id)
            if not cached:  # a thread's first entries (its first read): nothing to compare with
                cached.update(entries)
                added = sum(map(self._size, entries.keys(), entries.values()))
            else:
                added = self._added(cached, entries)
            self._sizes[thread_id] += added
            self._bytes += added
            if self._sizes[thread_id] > self._max_bytes:
                self._drop(thread_id)
            self._shrink()

    def _added(self, cached: dict[K, V], entries: Mapping[K, V]) -> int:
        """Adds ``entries`` to a thread's ``cached`` ones; returns how many bytes that adds."""
        added = 0
        for key, value in entries.items():
            replaced = cached.get(key)
            if replaced is not None:
                if not self._replace:
                    continue
                added -= self._size(key, replaced)
            cached[key] = value
            added += self._size(key, value)
        return added

    def know(self, thread_id: str) -> None:
        """Holds the thread without entries (a read found it has none), counted as one entry's
        overhead."""
        if not self._max_bytes:
            return
        with self._lock:
            self._held(thread_id, ENTRY_OVERHEAD)
            self._shrink()

    def _held(self, thread_id: str, size: int = 0) -> dict[K, V]:
        """The thread's entries, most recently used now; a new thread is held with ``size`` bytes."""
        cached = self._threads.get(thread_id)
        if cached is None:
            cached = self._threads[thread_id] = {}
            self._sizes[thread_id] = size
            self._bytes += size
        else:
            self._threads.move_to_end(thread_id)
        return cached

    def _shrink(self) -> None:
        """Drops the least recently used threads until the cache is within its size."""
        while self._bytes > self._max_bytes:
            self._drop(next(iter(self._threads)))

    def forget(self, thread_ids: Iterable[str]) -> None:
        with self._lock:
            for thread_id in thread_ids:
                if thread_id in self._threads:
                    self._drop(thread_id)

    def _drop(self, thread_id: str) -> None:
        del self._threads[thread_id]
        self._bytes -= self._sizes.pop(thread_id)


StoredItem = tuple[str, bytes]
"""(type, data) as stored, or as the serializer made them"""


def item_cache(max_bytes: int) -> ThreadCache[bytes, StoredItem]:
    """Stored list items by name."""
    return ThreadCache(max_bytes, lambda name, item: len(item[1]) + ENTRY_OVERHEAD)


ListArray = tuple[bytes, bytes]
"""A list as last read: its ``refs`` and its items as one msgpack array (``Codec.items_array``)."""


def list_array_cache(max_bytes: int) -> ThreadCache[tuple[str, str], ListArray]:
    """The last list read of each namespace and channel: a read that finds the same ``refs`` decodes
    the array without splitting, checking and looking up the item names again."""
    return ThreadCache(
        max_bytes, lambda key, entry: len(entry[0]) + len(entry[1]) + ENTRY_OVERHEAD, replace=True
    )
