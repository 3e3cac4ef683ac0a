"""Pending writes that ride with the next checkpoint's put, in async runs.

LangGraph saves a task's writes (``aput_writes``) as soon as the task finishes and, at the end of
the step, the checkpoint that follows (``aput``), each in a task of its own; with one task per
step the two are usually submitted in the same turn of the event loop. Sent apart they cost two
statements; most of a checkpointer's client time per checkpoint goes to a statement's round of
psycopg, the pool and the event loop, so under load that second statement is what limits
throughput.

So ``aput_writes`` first offers its writes here for one turn of the event loop. A put of the
checkpoint that follows them (same thread and namespace, its parent is the writes' checkpoint,
the same lease epoch) that starts in that turn takes them and stores them in its own statement;
``aput_writes`` then returns once that statement has committed, as it would after its own. Writes
not taken in that turn, or whose put failed, are sent by ``aput_writes`` itself, so what
``aput_writes`` guarantees does not change: when it returns, its writes are stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from durable_graph.checkpointers.postgres.sql import TaskWrites

_Key = tuple[str, str, str, int | None]
"""thread, namespace, checkpoint id of the writes, lease epoch"""


@dataclass(slots=True)
class Offer:
    writes: TaskWrites
    carried: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """True once a put stored the writes; False when the put that took them failed."""


class WritesOutbox:
    """Writes offered by ``aput_writes`` for one turn of the event loop; one per checkpointer."""

    def __init__(self) -> None:
        self._offers: dict[_Key, list[Offer]] = {}

    async def carried(self, writes: TaskWrites, epoch: int | None) -> bool:
        """Offers ``writes`` for one turn of the loop: True when a put took and stored them, False
        when the caller must send them itself."""
        key = (writes.thread_id, writes.checkpoint_ns, writes.checkpoint_id, epoch)
        offer = Offer(writes)
        self._offers.setdefault(key, []).append(offer)
        try:
            await asyncio.sleep(0)
        finally:
            taken = not self._withdraw(key, offer)
        return taken and await offer.carried

    def take(
        self, thread_id: str, checkpoint_ns: str, parent_id: str | None, epoch: int | None
    ) -> list[Offer]:
        """The offered writes of checkpoint ``parent_id`` that a put of its child may carry: one
        offer per task (a task offered twice keeps the order of its own statements)."""
        if not parent_id:
            return []
        offers = self._offers.pop((thread_id, checkpoint_ns, parent_id, epoch), [])
        tasks = [offer.writes.task_id for offer in offers]
        taken = [offer for offer in offers if tasks.count(offer.writes.task_id) == 1]
        if len(taken) < len(offers):
            key = (thread_id, checkpoint_ns, parent_id, epoch)
            self._offers[key] = [offer for offer in offers if offer not in taken]
        return taken

    @staticmethod
    def settle(offers: Sequence[Offer], stored: bool) -> None:
        """Tells the ``aput_writes`` calls of ``offers`` whether the put stored their writes."""
        for offer in offers:
            if not offer.carried.done():
                offer.carried.set_result(stored)

    def _withdraw(self, key: _Key, offer: Offer) -> bool:
        """Removes ``offer`` if no put took it; whether it was still there."""
        offers = self._offers.get(key)
        if offers is None or offer not in offers:
            return False
        offers.remove(offer)
        if not offers:
            del self._offers[key]
        return True
