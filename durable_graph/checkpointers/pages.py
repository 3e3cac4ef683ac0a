"""Keyset pages for ``list()``: a thread's history is read a page at a time, newest first.

Taking the first few checkpoints of a long thread (``get_state_history``, ``durable-graph history``,
an Agent Server listing) then reads and decodes about that many, not the whole thread, and no
connection is held while the caller looks at a page. Pages start small and grow, so a full listing
costs few round trips. Each page is read on its own: a checkpoint written while a listing is under
way is newer than its cursor and not listed; one deleted meanwhile may be missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.checkpoint.base import CheckpointTuple

FIRST_PAGE = 10
LARGEST_PAGE = 200

Cursor = tuple[str, str, str]
"""``(checkpoint_id, thread_id, checkpoint_ns)`` of the last row listed: rows are listed in
descending order of that triple, so the next page starts below it."""


@dataclass(slots=True)
class ListPages:
    """Where a listing stands: the cursor, how many rows it gave, and the size of the next page."""

    limit: int | None
    after: Cursor | None = None
    given: int = 0
    size: int = FIRST_PAGE
    finished: bool = False

    def __post_init__(self) -> None:
        if self.limit is not None and (
            not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 0
        ):
            raise ValueError(f"list limit must be a non-negative int, got {self.limit!r}")

    def next_size(self) -> int | None:
        """How many rows to ask for next; None when the listing is complete."""
        if self.finished:
            return None
        size = self.size if self.limit is None else min(self.size, self.limit - self.given)
        return size if size > 0 else None

    def advance(self, keys: list[Cursor], asked: int) -> None:
        """Record a page of ``asked`` rows that gave the rows of ``keys``, in listing order."""
        self.given += len(keys)
        if len(keys) < asked:
            self.finished = True
        else:
            self.after = keys[-1]
        self.size = min(self.size * 2, LARGEST_PAGE)


def cursor_of(listed: CheckpointTuple) -> Cursor:
    """The cursor that lists the rows after ``listed``."""
    configurable = listed.config["configurable"]
    return configurable["checkpoint_id"], configurable["thread_id"], configurable.get("checkpoint_ns", "")
