"""Which namespace prefixes hold few vectors, remembered for a while by each store.

A vector search first decides its path: an exact scan for a namespace prefix holding fewer than
``tuning.EXACT_SCAN_MAX_VECTORS`` vectors, else the HNSW index. Counting up to that many vectors
is a noticeable share of a search (docs/memory.md), so a search reports what it counted and the
next searches of the same prefix reuse the answer for ``tuning.SCOPE_SIZE_SECONDS``.

The same holds for a filter's equalities (``FilterSQL.contained``): whether fewer items of a prefix
than that contain them, counted through the items' GIN index, decides whether the filter is
searched exactly; it is remembered per prefix and equalities.

A store's own puts drop what it remembered of the prefixes they write below. A stale answer, from
another process's writes, costs speed, never results: a namespace that grew past the threshold is
searched exactly a little longer (exact is exact), and one that shrank is walked through the index,
whose short pages fall back to the exact scan anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from durable_graph.memory import tuning
from durable_graph.memory.namespaces import to_text

MAX_REMEMBERED = 10_000


class ScopeSizes:
    def __init__(
        self, seconds: float = tuning.SCOPE_SIZE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._seconds = seconds
        self._clock = clock
        # prefix -> equalities (None: the whole prefix) -> (small, when counted)
        self._small: dict[str, dict[str | None, tuple[bool, float]]] = {}

    def small(self, prefix: str, equalities: str | None = None) -> bool | None:
        """Whether ``prefix`` held few vectors (with ``equalities``: few items whose values contain
        them) when last counted; None if unknown or too old."""
        known = self._small.get(prefix, {}).get(equalities)
        if known is None or self._clock() - known[1] > self._seconds:
            return None
        return known[0]

    def forget_above(self, namespace: tuple[str, ...]) -> None:
        """Drop what was remembered of ``namespace`` and of every prefix of it (a put there changes
        their sizes)."""
        for depth in range(len(namespace) + 1):
            self._small.pop(to_text(namespace[:depth]), None)

    def remember(self, prefix: str, small: bool, equalities: str | None = None) -> None:
        if len(self._small) >= MAX_REMEMBERED:
            self._small.clear()
        counts = self._small.setdefault(prefix, {})
        if len(counts) >= MAX_REMEMBERED:
            counts.clear()
        counts[equalities] = (small, self._clock())
