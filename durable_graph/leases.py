"""One runner per thread: a lease held for as long as a run of the thread is in progress.

``with thread_lease(url, thread_id):`` (or ``async with``) runs its body only while no other process
runs the same thread; a second acquisition raises ``ThreadBusyError`` or, with ``wait=True``, waits
(up to ``timeout`` seconds) for the first one to finish. Each backend uses a lock that the operating
system or the database drops by itself when its holder dies, so a crashed runner never leaves a
thread locked and nothing has to expire:

- Postgres: a session advisory lock (``pg_try_advisory_lock``) on a key derived from the thread id,
  held by a connection of the lease's own. A killed process's connection closes, and with it the lock.
- SQLite: an exclusive ``flock`` on a lock file per thread in ``<database>.leases/`` next to the
  database file. The kernel drops it when the holding process dies. (SQLite is a one-machine
  database, so a one-machine lock is enough; flock is unreliable on some network file systems.)
- Memory (and ``sqlite:///:memory:``): a lock in this process.

The waiting logic is written once (``_acquire_steps``); the sync and async forms only drive it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import psycopg

from durable_graph.errors import BackendUnavailableError, ThreadBusyError
from durable_graph.urls import BackendURL, parse_url

_FIRST_POLL = 0.02
_MAX_POLL = 0.5
# Find a dead peer (a machine that vanished, not just a process) within about a minute.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}


def _digest(thread_id: str, size: int) -> bytes:
    return hashlib.blake2b(f"durable_graph:thread:{thread_id}".encode(), digest_size=size).digest()


def advisory_key(thread_id: str) -> int:
    """The Postgres advisory lock key (a signed 64-bit integer) of a thread."""
    return int.from_bytes(_digest(thread_id, 8), "big", signed=True)


class _Holder(Protocol):
    """One backend's lock on one thread: a non-blocking attempt and a release."""

    def try_acquire(self) -> bool: ...
    def release(self) -> None: ...
    async def atry_acquire(self) -> bool: ...
    async def arelease(self) -> None: ...


class _PostgresHolder:
    def __init__(self, conninfo: str, thread_id: str) -> None:
        self._conninfo = conninfo
        self._key = advisory_key(thread_id)
        self._thread_id = thread_id
        self._conn: psycopg.Connection[Any] | None = None
        self._aconn: psycopg.AsyncConnection[Any] | None = None

    def _unreachable(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(f"cannot take the lease of thread {self._thread_id!r}: {exc}")

    def _connect_args(self) -> dict[str, Any]:
        return {"autocommit": True, "application_name": "durable-graph lease", **_KEEPALIVES}

    def try_acquire(self) -> bool:
        try:
            if self._conn is None:
                self._conn = psycopg.connect(self._conninfo, **self._connect_args())
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.OperationalError as exc:
            self.release()
            raise self._unreachable(exc) from exc
        return bool(row and row[0])

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Closing the session drops its advisory locks; unlocking first just says so explicitly.
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            conn.close()

    async def atry_acquire(self) -> bool:
        try:
            if self._aconn is None:
                self._aconn = await psycopg.AsyncConnection.connect(self._conninfo, **self._connect_args())
            cur = await self._aconn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
            row = await cur.fetchone()
        except psycopg.OperationalError as exc:
            await self.arelease()
            raise self._unreachable(exc) from exc
        return bool(row and row[0])

    async def arelease(self) -> None:
        conn, self._aconn = self._aconn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                await conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            await conn.close()


class _FileHolder:
    """An exclusive ``flock`` on ``<database>.leases/<hash of thread id>.lock``."""

    def __init__(self, database: Path, thread_id: str) -> None:
        self._dir = database.parent / (database.name + ".leases")
        self._path = self._dir / (_digest(thread_id, 16).hex() + ".lock")
        self._thread_id = thread_id
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        self._dir.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            # A releasing holder unlinks the file before unlocking it; if we locked such an
            # orphaned file, the lock means nothing: try again with the file now at the path.
            try:
                current = os.stat(self._path)
            except FileNotFoundError:
                current = None
            if current is not None and current.st_ino == os.fstat(fd).st_ino:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {self._thread_id}\n".encode())
                self._fd = fd
                return True
            os.close(fd)

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
            os.close(fd)  # closing the last descriptor drops the flock

    async def atry_acquire(self) -> bool:
        return self.try_acquire()  # never blocks: LOCK_NB

    async def arelease(self) -> None:
        self.release()


_local_lock = threading.Lock()
_local_busy: set[str] = set()


class _LocalHolder:
    """A lock in this process, for backends that live in this process only."""

    def __init__(self, scope: str, thread_id: str) -> None:
        self._key = f"{scope}\0{thread_id}"
        self._held = False

    def try_acquire(self) -> bool:
        with _local_lock:
            if self._key in _local_busy:
                return False
            _local_busy.add(self._key)
        self._held = True
        return True

    def release(self) -> None:
        if self._held:
            with _local_lock:
                _local_busy.discard(self._key)
            self._held = False

    async def atry_acquire(self) -> bool:
        return self.try_acquire()

    async def arelease(self) -> None:
        self.release()


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
        return _PostgresHolder(backend.postgres_conninfo(), thread_id)
    if backend.kind == "sqlite" and backend.target != ":memory:":
        return _FileHolder(Path(backend.target).expanduser().resolve(), thread_id)
    return _LocalHolder(backend.url, thread_id)


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
