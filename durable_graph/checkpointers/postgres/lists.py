"""What the Postgres checkpointer remembers of the lists it stored, so a put sends only new items.

A list channel value is stored as the hashes of its items (``refs``). A version whose list extends
an earlier version stored in full (its ``base``) by a short tail stores only the tail's hashes; a
new full version is written once the tail grows past about the square root of the base's length,
so lists that grow by appends take about ``n * sqrt(n)`` hashes in all instead of ``n * n / 2``.

A full version also names the groups of its leading items (``groups``, ``grouped`` of them): each
group holds consecutive items as one stored msgpack array, so a process new to the thread reads a
long list as a few groups and the items past them instead of one row per item. A full version
takes its parent's groups over when its list begins with the items they hold, and adds a group of
the items past them once there are ``GROUP_MIN_ITEMS`` or more (about the square root of the
length, as tails are): each item of a list that grows by appends is in one group, stored once more.
A list that replaces its parent's (a sliding window, a list rewritten at every step) is not grouped.

The client remembers, per thread, the lists of the last checkpoint it wrote or read, and which of
its channels hold no value (their versions are in the checkpoint's body: a put keeps an unchanged
one there instead of naming a blob row that does not exist). When every value that checkpoint
stores apart is a list, reading it again leaves its blob rows out: what they hold is remembered.
A put whose parent is that checkpoint sends only the items past the parent's lists and picks the
tail's base itself. That is safe while the parent checkpoint exists: its blobs, their bases and
their items stay stored as long as it does (pruning keeps whatever a remaining checkpoint uses),
and channel versions carry a random part, so a version names one stored value. The put statement
checks that the parent exists, and the client sends everything again when it does not; a read
checks that the checkpoint still names the remembered versions, and reads the blobs when not.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from durable_graph.checkpointers.codec import HASH_BYTES

GROUP_MIN_ITEMS = 16
"""A full version groups the items past its parent's groups once they are this many or more."""

_REMEMBERED_THREADS = 1024
"""How many threads' last lists a checkpointer remembers..."""
_REMEMBERED_BYTES = 16 * 1024 * 1024
"""...and how many bytes of item hashes it keeps for them at most."""

ThreadKey = tuple[str, str]
"""(thread_id, checkpoint_ns)"""


@dataclass(frozen=True, slots=True)
class StoredList:
    """One stored list version: all its item hashes, and the full version it is a tail of, if any."""

    version: str
    refs: bytes
    base: str | None = None
    base_length: int = 0
    """Bytes of ``refs`` that the base holds (0 when stored in full)."""
    groups: bytes = b""
    """The names of the groups of the list's leading items: its full version's (its base's)."""
    grouped: int = 0
    """How many leading items ``groups`` hold."""

    @property
    def stored_refs(self) -> bytes:
        """The hashes the version's own row holds: the tail past its base, or all of them."""
        return self.refs[self.base_length :]


def store_list(version: str, refs: bytes, parent: StoredList | None) -> tuple[StoredList, int]:
    """How to store list ``refs`` as ``version`` given the parent's list of the same channel.

    Returns the stored form and how many bytes of ``refs`` the parent's list already holds: the
    items in them are stored already and need not be sent. A tail has its base's groups; a full
    version the parent's when its list begins with their items (``to_group`` says what to add).
    """
    if parent is None:
        return StoredList(version, refs), 0
    if not refs.startswith(parent.refs):
        if parent.grouped and refs.startswith(parent.refs[: parent.grouped * HASH_BYTES]):
            return StoredList(version, refs, groups=parent.groups, grouped=parent.grouped), 0
        return StoredList(version, refs), 0
    if parent.base is None:  # the parent's list is stored in full: it becomes the base
        base, base_length = parent.version, len(parent.refs)
    else:
        base, base_length = parent.base, parent.base_length
    max_tail = max(16, math.isqrt(base_length // HASH_BYTES)) * HASH_BYTES
    if len(refs) - base_length <= max_tail:
        tail = StoredList(version, refs, base, base_length, parent.groups, parent.grouped)
        return tail, len(parent.refs)
    return StoredList(version, refs, groups=parent.groups, grouped=parent.grouped), len(parent.refs)


def to_group(stored: StoredList, known: int) -> range:
    """The positions of the items a new group of ``stored`` holds (``store_list``'s answers): the
    items of a full version past its groups, once they are ``GROUP_MIN_ITEMS`` or more, when its
    list grew from the parent's (``known``) or kept the parent's groups. None for a tail, nor for a
    list replaced by another (a list replaced at every step is never grouped: it is not read again
    as a longer list, and grouping it would store it twice at every step)."""
    count = len(stored.refs) // HASH_BYTES
    grew = known > 0 or stored.grouped > 0
    if stored.base is not None or not grew or count - stored.grouped < GROUP_MIN_ITEMS:
        return range(0)
    return range(stored.grouped, count)


@dataclass(frozen=True, slots=True)
class Remembered:
    """What a client remembers of one checkpoint."""

    lists: dict[str, StoredList]
    empty: dict[str, str]
    """Channels without a value, by version, kept in the checkpoint's body."""
    only_lists: bool = False
    """Whether every value the checkpoint stores apart (in a blob row) is one of ``lists``."""


_NOTHING = Remembered({}, {})


class ListMemory:
    """What this client remembers of each thread's last checkpoint it put or read (``Remembered``),
    bounded, oldest dropped first."""

    def __init__(self, max_threads: int = _REMEMBERED_THREADS, max_bytes: int = _REMEMBERED_BYTES) -> None:
        self._max_threads = max_threads
        self._max_bytes = max_bytes
        self._entries: dict[ThreadKey, tuple[str, Remembered, int]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def of(self, key: ThreadKey, checkpoint_id: str | None) -> Remembered:
        """What is remembered of ``checkpoint_id``: nothing if another checkpoint is remembered."""
        entry = self._entries.get(key)
        if entry is None or not checkpoint_id or entry[0] != checkpoint_id:
            return _NOTHING
        return entry[1]

    def holds(self, key: ThreadKey, checkpoint_id: str) -> bool:
        """Whether what is remembered of the thread is of ``checkpoint_id`` (which, stored once, never
        changes: remembering it again would remember the same)."""
        entry = self._entries.get(key)
        return entry is not None and entry[0] == checkpoint_id

    def known(self, key: ThreadKey) -> str | None:
        """The remembered checkpoint of the thread when every value it stores apart is a list."""
        entry = self._entries.get(key)
        return entry[0] if entry is not None and entry[1].only_lists else None

    def remember(self, key: ThreadKey, checkpoint_id: str, remembered: Remembered) -> None:
        size = sum(len(stored.refs) + len(stored.groups) for stored in remembered.lists.values())
        with self._lock:
            self._drop(key)
            if size <= self._max_bytes:
                self._entries[key] = (checkpoint_id, remembered, size)
                self._bytes += size
            while len(self._entries) > self._max_threads or self._bytes > self._max_bytes:
                self._drop(next(iter(self._entries)))

    def forget(self, key: ThreadKey) -> None:
        with self._lock:
            self._drop(key)

    def _drop(self, key: ThreadKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[2]
