"""One runner per thread: a lease held for as long as a run of the thread is in progress.

``with thread_lease(url, thread_id):`` (or ``async with``) runs its body only while no other process
runs the same thread; a second acquisition raises ``ThreadBusyError`` or, with ``wait=True``, waits
(up to ``timeout`` seconds) for the first one to finish. Each backend uses a lock that the operating
system or the database drops by itself when its holder dies, so a crashed runner never leaves a
thread locked and nothing has to expire:

- Postgres: a session advisory lock (``pg_try_advisory_lock``) on a key derived from the thread id,
  held by this process's lease connection to that database. A killed process's connection closes,
  and with it the lock. Taking the lock raises the thread's epoch, which fences every write of the
  run: a runner that lost its lease (a server restart, a failover) commits nothing more, and its
  next write raises ``LeaseLostError`` (see ``fences`` and ``postgres``).
- SQLite: an exclusive ``flock`` on a lock file per thread in ``<database>.leases/`` next to the
  database file. The kernel drops it when the holding process dies. (SQLite is a one-machine
  database, so a one-machine lock is enough; flock is unreliable on some network file systems.)
- Memory (and ``sqlite:///:memory:``): a lock in this process.

The waiting logic is written once (``_acquire_steps``); the sync and async forms only drive it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from durable_graph.errors import ThreadBusyError
from durable_graph.leases.fences import Fence
from durable_graph.leases.keys import advisory_key
from durable_graph.leases.local import FileHolder, LocalHolder
from durable_graph.leases.postgres import PostgresHolder
from durable_graph.urls import BackendURL, parse_url

_FIRST_POLL = 0.02
_MAX_POLL = 0.5


class _Holder(Protocol):
    """One backend's lock on one thread: a non-blocking attempt and a release."""

    fence: Fence | None

    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...
    async def atry_acquire(self) -> bool: ...
    async def arelease(self) -> None: ...


def _acquire_steps(
    thread_id: str, wait: bool, timeout: float | None
) -> Generator[float | None, bool | None, None]:
    """Yields ``None`` to ask for one attempt (the caller sends back whether it got the lock) or a
    number of seconds to sleep; raises ``ThreadBusyError`` when it gives up."""
    started = time.monotonic()
    delay = _FIRST_POLL
    while True:
        if (yield None):
            return
        waited = time.monotonic() - started
        if not wait:
            raise ThreadBusyError(thread_id)
        if timeout is not None and waited >= timeout:
            raise ThreadBusyError(thread_id, waited)
        yield delay if timeout is None else max(0.0, min(delay, timeout - waited))
        delay = min(delay * 2, _MAX_POLL)


class ThreadLease:
    """The right to run one thread, held between enter and exit (``with`` or ``async with``)."""

    def __init__(self, holder: _Holder, thread_id: str, *, wait: bool, timeout: float | None) -> None:
        self.thread_id = thread_id
        self._holder = holder
        self._wait = wait
        self._timeout = timeout

    @property
    def epoch(self) -> int | None:
        """The thread's epoch this lease raised (Postgres), or None (a lease that cannot be lost)."""
        fence = self._holder.fence
        return None if fence is None else fence.epoch

    def check(self) -> None:
        """Raise ``LeaseLostError`` if the lease was lost: for long work that writes nothing."""
        fence = self._holder.fence
        if fence is not None:
            fence.check()

    def __enter__(self) -> ThreadLease:
        steps = _acquire_steps(self.thread_id, self._wait, self._timeout)
        try:
            step = next(steps)
            while True:
                if step is None:
                    step = steps.send(self._holder.try_acquire())
                else:
                    time.sleep(step)
                    step = steps.send(None)
        except StopIteration:
            return self
        except BaseException:
            self._holder.release()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._holder.release()

    async def __aenter__(self) -> ThreadLease:
        steps = _acquire_steps(self.thread_id, self._wait, self._timeout)
        try:
            step = next(steps)
            while True:
                if step is None:
                    step = steps.send(await self._holder.atry_acquire())
                else:
                    await asyncio.sleep(step)
                    step = steps.send(None)
        except StopIteration:
            return self
        except BaseException:
            await self._holder.arelease()
            raise

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._holder.arelease()


def _holder_for(target: str | BackendURL | Any, thread_id: str) -> _Holder:
    backend = target if isinstance(target, BackendURL) else backend_of(target)
    if backend.kind in ("postgres", "embedded"):
        return PostgresHolder(backend.postgres_conninfo(), thread_id, advisory_key(thread_id))
    if backend.kind == "sqlite" and backend.target != ":memory:":
        return FileHolder(Path(backend.target).expanduser().resolve(), thread_id)
    return LocalHolder(backend.url, thread_id)


def backend_of(target: str | Any) -> BackendURL:
    """The backend of a URL, or of an open checkpointer (which knows the URL it was opened with)."""
    if isinstance(target, str):
        return parse_url(target)
    backend_url = getattr(target, "backend_url", None)
    if isinstance(backend_url, str):
        return parse_url(backend_url)
    if isinstance(backend_url, BackendURL):
        return backend_url
    # PostgresCheckpointer keeps its conninfo with its pools.
    conninfo = getattr(target, "conninfo", None) or getattr(getattr(target, "_pools", None), "conninfo", None)
    if isinstance(conninfo, str):
        return BackendURL("postgres", conninfo, conninfo)
    path = getattr(target, "path", None)
    if isinstance(path, str | Path):
        return BackendURL("sqlite", str(path), f"sqlite:///{path}")
    # Anything else lives in this process (e.g. a MemoryCheckpointer): scope the lock to the object.
    return BackendURL("memory", "", f"memory://{id(target):x}")


def thread_lease(
    url_or_saver: str | BackendURL | Any, thread_id: str, *, wait: bool = False, timeout: float | None = None
) -> ThreadLease:
    """The lease of ``thread_id`` in the database behind ``url_or_saver`` (a backend URL or an
    open checkpointer), to hold with ``with`` or ``async with`` while running the thread.

    Entering raises ``ThreadBusyError`` if another runner holds it; with ``wait=True`` it waits for
    that runner to finish, for at most ``timeout`` seconds (``None``: no limit).
    """
    if not isinstance(thread_id, str) or not thread_id:
        raise ValueError(f"thread_id must be a non-empty string, not {thread_id!r}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout must be None or at least 0 seconds, not {timeout!r}")
    return ThreadLease(_holder_for(url_or_saver, thread_id), thread_id, wait=wait, timeout=timeout)
