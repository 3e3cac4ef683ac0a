"""Stored list items a checkpointer has written or read, kept so a read need not fetch them again.

A list item is stored once per thread under a name derived from its content (``codec``), and a
stored item never changes: the same thread and name always mean the same bytes. So a client can
keep the items it has seen and trust them without asking the database; a read then fetches only
the checkpoint's rows and the item names, and the items it does not hold. Deleting a thread
forgets its items; an item whose row another process deleted (``prune``) is only ever asked for
by a checkpoint that no longer exists.

The cache holds stored bytes (compressed, encrypted as stored), not decoded values: a decoded
value handed to a graph may be changed in place, its stored bytes cannot.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping

DEFAULT_ITEM_CACHE_BYTES = 64 * 1024 * 1024
_ENTRY_OVERHEAD = 120
"""About what a cached item costs in Python objects beyond its bytes."""

StoredItem = tuple[str, bytes]
"""(type, data) as stored"""


class ItemCache:
    """Stored list items by thread and name; past ``max_bytes`` the least recently used threads'
    items are dropped (a thread is the unit: a read wants all of its list items)."""

    def __init__(self, max_bytes: int = DEFAULT_ITEM_CACHE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._threads: OrderedDict[str, dict[bytes, StoredItem]] = OrderedDict()
        self._sizes: dict[str, int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def holds(self, thread_id: str) -> bool:
        """Whether items of the thread are cached: a read of it then fetches the others separately."""
        return thread_id in self._threads

    def items_of(self, thread_id: str) -> dict[bytes, StoredItem]:
        """The cached items of the thread, by name: to look up in, not to change or keep (it grows)."""
        with self._lock:
            items = self._threads.get(thread_id)
            if items is None:
                return {}
            self._threads.move_to_end(thread_id)
            return items

    def add(self, thread_id: str, items: Mapping[bytes, StoredItem]) -> None:
        """Keeps ``items`` of the thread; a thread whose items alone exceed the size is not kept."""
        if not self._max_bytes or not items:
            return
        with self._lock:
            cached = self._threads.get(thread_id)
            if cached is None:
                cached = self._threads[thread_id] = {}
                self._sizes[thread_id] = 0
            else:
                self._threads.move_to_end(thread_id)
            added = 0
            for name, (type_, data) in items.items():
                if name not in cached:
                    cached[bytes(name)] = (type_, bytes(data))
                    added += len(data) + _ENTRY_OVERHEAD
            self._sizes[thread_id] += added
            self._bytes += added
            if self._sizes[thread_id] > self._max_bytes:
                self._drop(thread_id)
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
