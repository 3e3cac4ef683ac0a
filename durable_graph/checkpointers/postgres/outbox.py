"""Pending writes that ride with the next checkpoint's put, in async runs.

LangGraph saves a task's writes (``aput_writes``) as soon as the task finishes and, at the end of
the step, the checkpoint that follows (``aput``), each in a task of its own; with one task per
step the two are usually submitted in the same turn of the event loop. Sent apart they cost two
statements; most of a checkpointer's client time per checkpoint goes to a statement's round of
psycopg, the pool and the event loop, so under load that second statement is what limits
throughput.

So ``aput_writes`` first offers its writes here (unless no put follows them at once: an error, an
interrupt, a thread with a ``DeltaChannel``) for one turn of the event loop, or, when the put of
their own checkpoint is still under way (after an input, LangGraph saves the writes while the
input's checkpoint is being put, and chains the next put to that one), until that put has ended and
two turns more (``_PUT_WAIT`` at most). A put of the checkpoint that follows them (same thread and
namespace, its parent is the writes' checkpoint, the same lease epoch) that starts meanwhile takes
them and stores them in its own statement; ``aput_writes`` then returns once that statement has
committed, as it would after its own. Writes not taken, or whose put failed, are sent by
``aput_writes`` itself, so what ``aput_writes`` guarantees does not change: when it returns, its
writes are stored.

Sync calls are not held: LangGraph runs them on its thread pool, which a graph may limit to one
thread (``max_concurrency``), and a held call would then hold up the very put it waits for.
Measured on the 10-node benchmark, holding them for 2 ms gained 4%.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field

from durable_graph.checkpointers.postgres.sql import TaskWrites

_Key = tuple[str, str, str, int | None]
"""thread, namespace, checkpoint id of the writes, lease epoch"""
_TURNS_AFTER_PUT = 2
"""Turns of the event loop from the end of a put to the start of the next one LangGraph chains to it."""
_PUT_WAIT = 5.0
"""Seconds at most that writes wait for the put of their own checkpoint to end (a put that takes
longer, say while the database restarts, lets them go on their own)."""
# Writes after which no put follows at once: an error (LangGraph waits for it before an error
# handler runs, or the run ends) or an interrupt (the step does not complete). LangGraph's ERROR,
# INTERRUPT and ERROR_SOURCE_NODE channels, which it does not export.
_NOT_FOLLOWED = frozenset({"__error__", "__interrupt__", "__error_source_node__"})
_DELTA_THREADS_KEPT = 10_000


@dataclass(slots=True)
class Offer:
    writes: TaskWrites
    carried: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    """True once a put stored the writes; False when the put that took them failed."""


class WritesOutbox:
    """Writes offered by ``aput_writes``, and the puts under way; one per checkpointer."""

    def __init__(self) -> None:
        self._offers: dict[_Key, list[Offer]] = {}
        self._putting: dict[_Key, tuple[asyncio.Event, asyncio.AbstractEventLoop]] = {}
        self._delta_threads: set[tuple[str, str]] = set()

    def note_delta(self, thread_id: str, checkpoint_ns: str) -> None:
        """This thread's checkpoints hold a ``DeltaChannel`` (their metadata says so): LangGraph waits
        for its writes before it starts the next put, so they are not offered."""
        if len(self._delta_threads) >= _DELTA_THREADS_KEPT:
            self._delta_threads.clear()
        self._delta_threads.add((thread_id, checkpoint_ns))

    def putting(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, epoch: int | None
    ) -> tuple[_Key, asyncio.Event]:
        """Notes that the put of this checkpoint has started (``put_done`` when it ends)."""
        key, ended = (thread_id, checkpoint_ns, checkpoint_id, epoch), asyncio.Event()
        self._putting[key] = (ended, asyncio.get_running_loop())
        return key, ended

    def put_done(self, putting: tuple[_Key, asyncio.Event]) -> None:
        key, ended = putting
        if key in self._putting and self._putting[key][0] is ended:
            del self._putting[key]
        ended.set()

    async def carried(self, writes: TaskWrites, epoch: int | None) -> bool:
        """Offers ``writes`` (see the module): True when a put took and stored them, False when the
        caller must send them itself."""
        if (writes.thread_id, writes.checkpoint_ns) in self._delta_threads or any(
            row[1] in _NOT_FOLLOWED for row in writes.rows
        ):
            return False
        key = (writes.thread_id, writes.checkpoint_ns, writes.checkpoint_id, epoch)
        offer = Offer(writes)
        self._offers.setdefault(key, []).append(offer)
        try:
            await asyncio.sleep(0)
            being_put = self._putting.get(key)
            if (
                being_put is not None
                and being_put[1] is asyncio.get_running_loop()
                and self._offered(key, offer)
            ):
                # The checkpoint these writes belong to is still being put, and LangGraph starts the
                # put of its child when that one ends: the offer stands until then.
                with suppress(TimeoutError):
                    await asyncio.wait_for(being_put[0].wait(), _PUT_WAIT)
                for _ in range(_TURNS_AFTER_PUT):
                    if not self._offered(key, offer):
                        break
                    await asyncio.sleep(0)
        finally:
            taken = not self._withdraw(key, offer)
        return taken and await offer.carried

    def take(
        self, thread_id: str, checkpoint_ns: str, parent_id: str | None, epoch: int | None
    ) -> list[Offer]:
        """The offered writes of checkpoint ``parent_id`` that a put of its child may carry: those of
        tasks that offered once (one statement cannot store a row twice)."""
        if not parent_id:
            return []
        offers = self._offers.pop((thread_id, checkpoint_ns, parent_id, epoch), [])
        # Offers left behind by an event loop that was closed without running them to the end are
        # dropped: nobody waits for them.
        loop = asyncio.get_running_loop()
        offers = [offer for offer in offers if offer.carried.get_loop() is loop]
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

    def _offered(self, key: _Key, offer: Offer) -> bool:
        return offer in self._offers.get(key, ())

    def _withdraw(self, key: _Key, offer: Offer) -> bool:
        """Removes ``offer`` if no put took it; whether it was still there."""
        offers = self._offers.get(key)
        if offers is None or offer not in offers:
            return False
        offers.remove(offer)
        if not offers:
            del self._offers[key]
        return True
