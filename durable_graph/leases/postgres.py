"""Postgres leases: one connection per process and database holds all of the process's thread leases.

A thread's lease is a session advisory lock on the thread's key, taken in the same statement that
raises the thread's epoch in ``dg_thread_leases`` (the epoch fences the run's writes: see
``fences``). The leases of a process share one connection, its *lease session*, so taking a lease
costs one statement, not a new connection. A keeper thread watches the session:

- a dropped connection (a server restart or failover, ``pg_terminate_backend``) is noticed at once,
  as its socket closes; a dead network path within a few seconds (a probe every second, under a
  TCP user timeout);
- then every lease of the session is *suspended*: the run's writes wait. The keeper reconnects and
  takes each lease back if no other runner took the thread meanwhile (its epoch is unchanged), so a
  short restart costs a run nothing. A lease another runner took, or one not taken back within
  ``retry_for`` seconds, is *lost*: the run's next write raises ``LeaseLostError``, and the database
  refuses whatever it still sends.

The lock dies with the connection, so a crashed runner never leaves a thread locked. A process that
exits closes its sessions first (``close_sessions``, run at exit): the keeper thread stops before
the interpreter shuts down, which a thread still inside the database driver then might not survive.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import select
import socket
import threading
import time
from itertools import chain
from typing import Any

import psycopg

from durable_graph.backoff import backoff_delays
from durable_graph.errors import BackendUnavailableError
from durable_graph.leases import fences
from durable_graph.leases.fences import TAKEN_OVER, Fence
from durable_graph.migrations import Migration, migrate

COMPONENT = "leases"
MIGRATIONS = [
    Migration(
        1,
        """
CREATE TABLE dg_thread_leases (
    thread_id text COLLATE "C" PRIMARY KEY,
    epoch bigint NOT NULL,
    holder text NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
""",
    )
]

DEFAULT_RETRY_FOR = 10.0
PROBE_EVERY = 1.0
IDLE_CLOSE = 30.0
"""Seconds a session without leases keeps its connection for the next lease."""
CLOSE_WAIT = 5.0
"""Seconds ``close`` waits for the keeper thread to stop."""
EXITING = "the process is exiting"

# Notice a dead peer in a few seconds: probes are sent every second, and unacknowledged data (or
# unanswered keepalives) ends the connection within about four.
_CONNECT_ARGS: dict[str, Any] = {
    "autocommit": True,
    "application_name": "durable-graph lease",
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 2,
    "keepalives_interval": 1,
    "keepalives_count": 2,
    "tcp_user_timeout": 4000,
}

# The lock and the raised epoch are one statement: taking a lease is one round trip. Its commit does
# not wait for the disk: a write of the new holder that does wait (a checkpoint, a tool's claim)
# flushes the log up to itself, the new epoch included, so a crash that loses the epoch loses every
# write made under it too, and the thread then belongs to the holder before.
_TAKE = """
WITH locked AS MATERIALIZED (
    SELECT pg_try_advisory_lock(%(key)s) AS ok, set_config('synchronous_commit', 'off', true)
)
INSERT INTO dg_thread_leases AS l (thread_id, epoch, holder)
SELECT %(thread_id)s, 1, %(holder)s FROM locked WHERE locked.ok
ON CONFLICT (thread_id) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder, taken_at = now()
RETURNING epoch
"""
_RETAKE = """
WITH locked AS MATERIALIZED (SELECT pg_try_advisory_lock(%(key)s) AS ok)
SELECT locked.ok, (SELECT epoch FROM dg_thread_leases WHERE thread_id = %(thread_id)s) FROM locked
"""
_UNLOCK = "SELECT pg_advisory_unlock(%(key)s)"
_PROBE = "SELECT 1"
_BROKEN = (psycopg.OperationalError, psycopg.InterfaceError)


class _SessionClosed(psycopg.OperationalError):
    """A closed session was asked to run a statement."""


def holder_name() -> str:
    """Who holds a lease, as ``dg_thread_leases.holder`` shows it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseSession:
    """The lease connection of this process to one database, and the leases it holds."""

    def __init__(self, conninfo: str, database: fences.DatabaseKey, *, retry_for: float) -> None:
        self._conninfo = conninfo
        self._database = database
        self._retry_for = retry_for
        self._lock = threading.RLock()
        self._conn: psycopg.Connection[Any] | None = None
        self._migrated = False
        self._held: dict[str, tuple[int, Fence]] = {}
        self._idle_since = time.monotonic()
        self._keeper: threading.Thread | None = None
        self._closed = threading.Event()
        self._closed_because = ""
        self._wake_r, self._wake_w = socket.socketpair()

    # -- taking and giving back --------------------------------------------------------------

    def take(self, thread_id: str, key: int) -> Fence | None:
        """The fence of a new lease of ``thread_id``, or None if another runner holds the thread.

        A database this session reached before is waited for while it restarts (``retry_for``
        seconds, as the checkpointer does); one never reached fails at once."""
        params = {"key": key, "thread_id": thread_id, "holder": holder_name()}
        # One more try at once: a connection that died unnoticed (its leases are suspended now, the
        # keeper takes them back) is replaced by a new one.
        delays = chain([0.0], backoff_delays(self._retry_for) if self._migrated else ())
        while True:
            with self._lock:
                if thread_id in self._held:  # advisory locks are re-entrant within a session
                    return None
                try:
                    rows = self._execute(_TAKE, params)
                except _SessionClosed:
                    raise
                except _BROKEN:
                    delay = next(delays, None)
                    if delay is None:
                        raise
                else:
                    if not rows:
                        return None
                    fence = Fence(thread_id, int(rows[0][0]), longest_suspension=self._retry_for + 5.0)
                    self._held[thread_id] = (key, fence)
                    fences.register(self._database, fence)
                    break
            time.sleep(delay)
        self._start_keeper()
        return fence

    def give_back(self, fence: Fence) -> None:
        """End a lease: unlock it (unless it was lost) and stop fencing the thread's writes with it."""
        fences.unregister(self._database, fence)
        with self._lock:
            key, held = self._held.get(fence.thread_id, (0, None))
            if held is fence:
                self._lose(fence.thread_id, "the lease was released")
                if self._conn is not None:
                    try:
                        self._conn.execute(_UNLOCK, {"key": key})
                    except _BROKEN:
                        self._broken()  # the lock died with the connection; the other leases wait
            if not self._held:
                self._idle_since = time.monotonic()
        self._wake()

    def _lose(self, thread_id: str, reason: str) -> None:
        """Stop holding a lease. Its fence stays registered until the lease is given back, so the
        run's writes keep failing instead of going through unfenced."""
        _, fence = self._held.pop(thread_id)
        fence.lose(reason)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, reason: str = EXITING) -> None:
        """Lose every lease still held (the locks die with the connection), close the connection and
        stop the keeper thread. The session takes no lease after this; ``session_for`` makes a new one."""
        with self._lock:
            self._closed.set()
            self._closed_because = reason
            for thread_id in list(self._held):
                self._lose(thread_id, reason)
            conn, self._conn = self._conn, None
            keeper = self._keeper
        if conn is not None:
            conn.close()
        self._wake()
        if keeper is not None and keeper is not threading.current_thread():
            keeper.join(CLOSE_WAIT)

    # -- the connection ----------------------------------------------------------------------

    def _execute(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement on the session, connecting first if needed; a broken connection is
        dropped (suspending the leases it held) and the error raised."""
        with self._lock:
            if self._closed.is_set():
                raise _SessionClosed(f"the lease session was closed: {self._closed_because}")
            if self._conn is None:
                self._conn = self._connect()
            try:
                cur = self._conn.execute(sql, params)
                return cur.fetchall() if cur.description else []
            except _BROKEN:
                self._broken()
                raise

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._conninfo, **_CONNECT_ARGS)
        if not self._migrated:
            migrate(conn, COMPONENT, MIGRATIONS)
            self._migrated = True
        return conn

    def _broken(self) -> None:
        """The connection died, and with it every advisory lock it held: suspend their leases."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            for _, fence in self._held.values():
                fence.suspend()
        self._wake()

    # -- the keeper --------------------------------------------------------------------------

    def _start_keeper(self) -> None:
        with self._lock:
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(
                    target=self._keep, name="durable-graph lease keeper", daemon=True
                )
                self._keeper.start()

    def _wake(self) -> None:
        self._wake_w.send(b"\0")

    def _keep(self) -> None:
        while not self._closed.is_set():
            with self._lock:
                suspended = [fence for _, fence in self._held.values() if fence.state == "suspended"]
                conn = self._conn
                if not suspended and self._stop_if_idle():
                    return
            if suspended:
                self._take_back(suspended)
                continue
            try:
                waiting_on = [self._wake_r.fileno()] + ([conn.fileno()] if conn is not None else [])
                ready, _, _ = select.select(waiting_on, [], [], PROBE_EVERY)
            except (OSError, ValueError, psycopg.Error):
                continue  # the connection was closed meanwhile
            if self._wake_r.fileno() in ready:
                self._wake_r.recv(4096)
                continue
            if conn is not None:
                with contextlib.suppress(*_BROKEN):  # on failure the leases are suspended: see above
                    self._execute(_PROBE)

    def _take_back_one(self, fence: Fence) -> bool:
        """Whether the lease is settled: taken back, lost to another runner, or given back meanwhile;
        False while another process holds the lock without having raised the epoch (a probe)."""
        key, held = self._held.get(fence.thread_id, (0, None))
        if held is not fence:
            return True
        ((locked, epoch),) = self._execute(_RETAKE, {"key": key, "thread_id": fence.thread_id})
        if epoch != fence.epoch:
            if locked:
                self._execute(_UNLOCK, {"key": key})
            self._lose(fence.thread_id, TAKEN_OVER)
            return True
        if locked:
            fence.resume()
        return bool(locked)

    def _stop_if_idle(self) -> bool:
        """With no leases, close a dead or long idle connection and end the keeper (under the lock)."""
        if self._held:
            return False
        if self._conn is not None and time.monotonic() - self._idle_since < IDLE_CLOSE:
            return False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        self._keeper = None
        return True

    def _take_back(self, suspended: list[Fence]) -> None:
        """Reconnect and take back each suspended lease whose epoch no other runner raised; lose the
        others, and all that are still suspended after ``retry_for`` seconds."""
        pending = {fence.thread_id: fence for fence in suspended}
        reason = f"the database was unreachable for {self._retry_for:g} seconds"
        for delay in backoff_delays(self._retry_for):
            with self._lock:
                try:
                    for thread_id, fence in list(pending.items()):
                        if self._take_back_one(fence):
                            del pending[thread_id]
                        else:
                            reason = "another process held its lock"
                except _BROKEN:
                    pass  # still down: try again after the delay
            if not pending or self._closed.wait(delay):
                return
        with self._lock:
            for thread_id, fence in pending.items():
                if self._held.get(thread_id, (0, None))[1] is fence:
                    self._lose(thread_id, reason)


_sessions_lock = threading.Lock()
_sessions: dict[tuple[int, fences.DatabaseKey], LeaseSession] = {}


def session_for(conninfo: str, *, retry_for: float = DEFAULT_RETRY_FOR) -> LeaseSession:
    """This process's lease session in the database ``conninfo`` reaches."""
    database = fences.database_key(conninfo)
    key = (os.getpid(), database)  # a forked child must not share its parent's connection
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None or session.closed:
            _close_at_exit()
            session = _sessions[key] = LeaseSession(conninfo, database, retry_for=retry_for)
        return session


@functools.cache
def _close_at_exit() -> None:
    # Registered with the first session, after the embedded Postgres's exit handlers: runs before them.
    atexit.register(close_sessions)


def close_sessions() -> None:
    """Close this process's lease sessions (see ``LeaseSession.close``); run at exit.

    Sessions inherited from a parent process are only forgotten: their connection is the parent's."""
    with _sessions_lock:
        sessions = list(_sessions.items())
        _sessions.clear()
    for (pid, _), session in sessions:
        if pid == os.getpid():
            session.close()


class PostgresHolder:
    """One lease of one thread, held in this process's lease session (see ``lease.ThreadLease``)."""

    def __init__(self, conninfo: str, thread_id: str, key: int) -> None:
        self._conninfo = conninfo
        self._thread_id = thread_id
        self._key = key
        self.fence: Fence | None = None

    def try_acquire(self) -> bool:
        try:
            self.fence = session_for(self._conninfo).take(self._thread_id, self._key)
        except psycopg.OperationalError as exc:
            raise BackendUnavailableError(
                f"cannot take the lease of thread {self._thread_id!r}: {exc}"
            ) from exc
        return self.fence is not None

    def release(self) -> None:
        fence, self.fence = self.fence, None
        if fence is not None:
            session_for(self._conninfo).give_back(fence)

    async def atry_acquire(self) -> bool:
        import asyncio

        return await asyncio.to_thread(self.try_acquire)

    async def arelease(self) -> None:
        import asyncio

        await asyncio.to_thread(self.release)
