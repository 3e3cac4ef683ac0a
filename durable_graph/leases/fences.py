"""Fences: what a write of a leased run checks, so that a runner that lost its lease commits nothing.

Taking a thread's lease in Postgres raises the thread's *epoch* in ``dg_thread_leases``. While the
lease is held, this process's writes of that thread (checkpoints, pending writes, durable tool
records) carry the epoch and commit only if it is still the thread's epoch, checked in the same
statement with a share lock on the lease row. A runner that takes the thread over raises the epoch
under a row lock that waits for such writes to finish, and reads the thread only afterwards: every
write either lands before the takeover, where the new runner sees it, or is refused.

The fence of a thread is looked up by database and thread id (``fence_for``), so a checkpointer or a
tool log in this process finds it without being handed the lease. The keeper of the lease moves it
between *held*, *suspended* (the lease's connection dropped; writes wait) and *lost* (writes raise
``LeaseLostError``).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from durable_graph.errors import LeaseLostError

State = Literal["held", "suspended", "lost"]

DatabaseKey = tuple[str, str, str, str]

TAKEN_OVER = "another runner took the thread over"

_ASYNC_POLL = 0.02


def database_key(conninfo: str) -> DatabaseKey:
    """Which database a conninfo reaches, ``(host, port, dbname, user)``, so that two spellings of
    one database (a URL and a key/value string, an explicit default port) compare equal."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return (conninfo, "", "", "")
    user = str(params.get("user") or os.environ.get("PGUSER") or "")
    host = str(params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    dbname = str(params.get("dbname") or os.environ.get("PGDATABASE") or user)
    return (host, port, dbname, user)


class Fence:
    """The epoch one lease of one thread holds, and whether writes may use it now."""

    def __init__(self, thread_id: str, epoch: int, *, longest_suspension: float) -> None:
        self.thread_id = thread_id
        self.epoch = epoch
        self._longest_suspension = longest_suspension
        self._state: State = "held"
        self._reason = ""
        self._changed = threading.Condition()

    @property
    def state(self) -> State:
        return self._state

    def _set(self, state: State, reason: str = "") -> None:
        with self._changed:
            if self._state == "lost":
                return
            self._state, self._reason = state, reason
            self._changed.notify_all()

    def suspend(self) -> None:
        self._set("suspended")

    def resume(self) -> None:
        self._set("held")

    def lose(self, reason: str) -> None:
        self._set("lost", reason)

    def check(self) -> int:
        """The epoch, without waiting: ``LeaseLostError`` once lost (a suspended lease still answers)."""
        if self._state == "lost":
            raise LeaseLostError(self.thread_id, self._reason)
        return self.epoch

    def wait(self) -> int:
        """The epoch once the lease is held: waits while it is suspended, raises once it is lost."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._state != "suspended", self._longest_suspension):
                self._state, self._reason = "lost", "its connection stayed down"
        return self.check()

    async def await_held(self) -> int:
        """``wait`` for async code: polls instead of blocking the event loop."""
        deadline = time.monotonic() + self._longest_suspension
        while self._state == "suspended":
            if time.monotonic() > deadline:
                self._set("lost", "its connection stayed down")
                break
            await asyncio.sleep(_ASYNC_POLL)
        return self.check()


_lock = threading.Lock()
_fences: dict[tuple[DatabaseKey, str], Fence] = {}


def register(database: DatabaseKey, fence: Fence) -> None:
    with _lock:
        _fences[(database, fence.thread_id)] = fence


def unregister(database: DatabaseKey, fence: Fence) -> None:
    with _lock:
        if _fences.get((database, fence.thread_id)) is fence:
            del _fences[(database, fence.thread_id)]


def fence_for(database: DatabaseKey, thread_id: str) -> Fence | None:
    """The fence of ``thread_id`` if this process holds its lease in ``database``, else None."""
    return _fences.get((database, thread_id))
