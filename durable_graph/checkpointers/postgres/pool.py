"""Connections of the Postgres checkpointer: a sync and an async pool, and the ops' drivers.

The sync pool serves the sync methods and the async pool the async ones, so ``graph.invoke`` and
``graph.ainvoke`` both work whichever way the checkpointer was opened: ``open()`` opens the sync
pool, ``aopen()`` the async one, and the other is opened on first use.

An ``AsyncConnectionPool`` belongs to the event loop it was opened in. When an async method runs in
another loop and the pool's loop has stopped (say, a second ``asyncio.run``), a new pool is opened
in the current loop and the old one is dropped; while the pool's loop still runs, using the
checkpointer from a second loop raises ``RuntimeError``.

The schema is migrated once, before the first pool opens, on a connection of its own: a server
that cannot be reached fails there at once with ``BackendUnavailableError``.

Once open, a call that meets a lost connection (the server restarted, a failover) is retried with
backoff for ``retry_for`` seconds, then fails with ``BackendUnavailableError``. Every statement is
safe to repeat: writes are upserts keyed by what they write, deletes delete what is still there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, ConnectionPool, PoolTimeout

from durable_graph.backoff import backoff_delays
from durable_graph.checkpointers.postgres.arrays import ADAPTERS
from durable_graph.checkpointers.postgres.schema import COMPONENT, MIGRATIONS
from durable_graph.checkpointers.postgres.sql import Op, SnapshotNeeded
from durable_graph.checkpointers.postgres.wire import Wire
from durable_graph.errors import BackendUnavailableError, InvalidURLError, LeaseLostError
from durable_graph.leases.fences import Fence
from durable_graph.migrations import amigrate, migrate
from durable_graph.recent_first_pool import AsyncRecentFirstPool, RecentFirstPool

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 5
DEFAULT_RETRY_FOR = 10.0
_TRANSIENT = (psycopg.OperationalError, PoolTimeout)
APPLICATION_NAME = "durable-graph"
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
# Left to choose, Postgres plans a prepared statement again at every execution whenever the generic
# plan is estimated dearer than the custom ones, which it is for the put (its arrays' lengths are
# only known to custom plans): planning then costs more than running it. The statements are
# written so that their generic plans look rows up by primary key.
_GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"


def retry_for_pool(retry_for: float) -> float:
    """How long one wait for a pooled connection may take: a share of the whole retry budget."""
    return retry_for / 2


def describe(conninfo: str) -> str:
    """``host:port/dbname`` of a conninfo, for error messages (never the password)."""
    try:
        params = conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        return "an unparsable conninfo"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


class Pools:
    """The pools of one checkpointer. Copies of the checkpointer (``with_allowlist``) share it."""

    def __init__(
        self, conninfo: str, *, pool_size: int, connect_timeout: float, retry_for: float = DEFAULT_RETRY_FOR
    ) -> None:
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ValueError(f"pool_size must be a positive int, got {pool_size!r}")
        try:
            given = conninfo_to_dict(conninfo)
        except psycopg.ProgrammingError as exc:
            raise InvalidURLError(f"not a Postgres connection string or URL: {exc}") from exc
        self.conninfo = conninfo
        self.where = describe(conninfo)
        self.pool_size = pool_size
        self.retry_for = retry_for
        # psycopg prepares nothing itself (``wire`` prepares the checkpointer's statements): after a
        # rollback it would deallocate every prepared statement of the connection, ours too.
        self.kwargs: dict[str, Any] = {"autocommit": True, "prepare_threshold": None, "context": ADAPTERS}
        if "connect_timeout" not in given:
            self.kwargs["connect_timeout"] = max(1, round(connect_timeout))
        if "application_name" not in given:
            self.kwargs["application_name"] = APPLICATION_NAME
        # a startup option: it costs no statement, and no callback runs on a new connection
        self.kwargs["options"] = f"{given.get('options', '')} {_GENERIC_PLANS}".strip()
        self._lock = threading.Lock()
        self._migrated = False
        self._sync: ConnectionPool | None = None
        self._async: AsyncConnectionPool | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None
        self._async_opening: asyncio.Task[AsyncConnectionPool] | None = None
        self._async_closer: asyncio.Task[None] | None = None
        self._closing: set[Any] = set()

    def _unavailable(self, exc: Exception) -> BackendUnavailableError:
        return BackendUnavailableError(f"cannot reach Postgres at {self.where}: {exc}".strip())

    def _pool_options(self) -> dict[str, Any]:
        """What the sync and the async pool are both made with (opened by the caller)."""
        return {
            "kwargs": self.kwargs,
            "min_size": 1,
            "max_size": self.pool_size,
            "open": False,
            "timeout": max(1.0, retry_for_pool(self.retry_for)),
        }

    # -- sync ---------------------------------------------------------------------------------

    def open(self) -> ConnectionPool:
        pool = self._sync
        if pool is None:
            with self._lock:
                pool = self._sync
                if pool is None:
                    self._migrate()
                    pool = RecentFirstPool(
                        self.conninfo,
                        name="durable-graph-checkpoints",
                        connection_class=_Connection,
                        **self._pool_options(),
                    )
                    pool.open()
                    self._sync = pool
        return pool

    def _migrate(self) -> None:
        if self._migrated:
            return
        try:
            with psycopg.connect(self.conninfo, **self.kwargs) as conn:
                migrate(conn, COMPONENT, MIGRATIONS)
        except psycopg.OperationalError as exc:
            raise self._unavailable(exc) from exc
        self._migrated = True

    def run(self, build: Callable[[], Op[T]], fence: Fence | None = None) -> T:
        """Run the op ``build`` makes on a connection of the sync pool, retrying while the server is
        away; a leased run's write waits while its ``fence`` is suspended, and fails once it is lost."""
        started, delays = time.monotonic(), None
        while True:
            if fence is not None:
                fence.wait()
            try:
                pool = self._sync or self.open()
                # Not ``pool.connection()``: its exit commits, a call of its own on an autocommit
                # connection; ``putconn`` still rolls back or replaces a connection left unusable.
                conn = pool.getconn()
                try:
                    op = build()
                    try:
                        return _drive(conn, op)
                    except SnapshotNeeded:
                        op = _in_snapshot(op)
                    with conn.transaction():
                        conn.execute(_SNAPSHOT)
                        return _drive(conn, op)
                finally:
                    pool.putconn(conn)
            except LeaseLostError as exc:
                if fence is not None:
                    fence.lose(exc.reason)  # the next write fails without asking the database
                raise
            except _TRANSIENT as exc:
                delays = delays or backoff_delays(self.retry_for - (time.monotonic() - started))
                delay = next(delays, None)
                if delay is None:
                    raise self._unavailable(exc) from exc
                time.sleep(delay)

    def close(self) -> None:
        with self._lock:
            pool, self._sync = self._sync, None
        if pool is not None:
            pool.close()
        self._drop_async(None)

    # -- async --------------------------------------------------------------------------------

    async def aopen(self) -> AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        if self._async is not None and self._async_loop is loop:
            return self._async
        if self._async_loop is not loop:
            if self._async_loop is not None and self._async_loop.is_running():
                raise RuntimeError(
                    "this PostgresCheckpointer's async pool is in use by another running event loop; "
                    "open one checkpointer per event loop"
                )
            self._drop_async(loop)
            self._async_loop = loop
            self._async_opening = loop.create_task(self._open_async())
        assert self._async_opening is not None
        try:
            return await asyncio.shield(self._async_opening)
        except BaseException:
            if self._async_opening.done():
                self._async_opening = None
                self._async_loop = None
            raise

    async def _open_async(self) -> AsyncConnectionPool:
        if not self._migrated:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, **self.kwargs) as conn:
                    await amigrate(conn, COMPONENT, MIGRATIONS)
            except psycopg.OperationalError as exc:
                raise self._unavailable(exc) from exc
            self._migrated = True
        pool: AsyncConnectionPool = AsyncRecentFirstPool(
            self.conninfo,
            name="durable-graph-checkpoints-async",
            connection_class=_AsyncConnection,
            **self._pool_options(),
        )
        await pool.open()
        self._async = pool
        self._async_closer = asyncio.get_running_loop().create_task(_close_when_cancelled(pool))
        return pool

    async def arun(self, build: Callable[[], Op[T]], fence: Fence | None = None) -> T:
        """Async form of ``run``."""
        pool = await self.aopen()
        started, delays = time.monotonic(), None
        while True:
            if fence is not None:
                await fence.await_held()
            try:
                conn = await pool.getconn()
                try:
                    op = build()
                    try:
                        return await _adrive(conn, op)
                    except SnapshotNeeded:
                        op = _in_snapshot(op)
                    async with conn.transaction():
                        await conn.execute(_SNAPSHOT)
                        return await _adrive(conn, op)
                finally:
                    await pool.putconn(conn)
            except LeaseLostError as exc:
                if fence is not None:
                    fence.lose(exc.reason)  # the next write fails without asking the database
                raise
            except _TRANSIENT as exc:
                delays = delays or backoff_delays(self.retry_for - (time.monotonic() - started))
                delay = next(delays, None)
                if delay is None:
                    raise self._unavailable(exc) from exc
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        if self._async_loop is loop:
            opening, pool = self._async_opening, self._async
            self._async, self._async_loop, self._async_opening = None, None, None
            if pool is None and opening is not None:
                # Still opening: let it finish (or fail), then close what it opened.
                (opened,) = await asyncio.gather(opening, return_exceptions=True)
                pool = opened if isinstance(opened, AsyncConnectionPool) else None
            if pool is not None:
                await pool.close()
            if self._async_closer is not None:
                self._async_closer.cancel()
                self._async_closer = None
        else:
            self._drop_async(None)
        with self._lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            await asyncio.to_thread(sync.close)

    def _drop_async(self, current: asyncio.AbstractEventLoop | None) -> None:
        """Forget the async pool, closing it in its loop when that loop still runs."""
        pool, loop = self._async, self._async_loop
        self._async, self._async_loop, self._async_opening = None, None, None
        self._async_closer = None  # the pool is closed below, or its closer did when that loop ended
        if pool is None or loop is None or loop is current or loop.is_closed() or not loop.is_running():
            return
        closing: Coroutine[Any, Any, None] = pool.close()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(closing)
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        else:
            asyncio.run_coroutine_threadsafe(closing, loop)

    def stats(self) -> dict[str, dict[str, int]]:
        """psycopg-pool statistics of the open pools, by ``"sync"`` and ``"async"``."""
        found = {"sync": self._sync, "async": self._async}
        return {name: pool.get_stats() for name, pool in found.items() if pool is not None}


class _Connection(psycopg.Connection[Any]):
    wire: Wire | None = None


class _AsyncConnection(psycopg.AsyncConnection[Any]):
    wire: Wire | None = None


def _wire_of(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Wire:
    """What a pooled connection keeps between ops: its prepared statements (see ``wire``)."""
    assert isinstance(conn, _Connection | _AsyncConnection), "not a connection of the pools"
    if conn.wire is None:
        conn.wire = Wire.of(conn)
    return conn.wire


def _in_snapshot(op: Op[T]) -> Op[T]:
    if op.in_snapshot is None:
        raise RuntimeError("an operation asked for a snapshot without saying how to run in one")
    return op.in_snapshot()


def _drive(conn: psycopg.Connection[Any], op: Op[T]) -> T:
    steps, wire = op.steps, _wire_of(conn)
    try:
        statement = next(steps)
        while True:
            statement = steps.send(conn.wait(wire.run(statement)))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _close_when_cancelled(pool: AsyncConnectionPool) -> None:
    """Waits until cancelled, then closes ``pool``. ``asyncio.run`` cancels every task of its loop when
    it returns; a pool still open then has its background tasks cancelled, and psycopg-pool retries a
    connection cancelled mid-way for minutes (``reconnect_timeout``), so ``asyncio.run`` would hang.
    Closed, the pool drops those retries."""
    try:
        await asyncio.Event().wait()
    finally:
        await pool.close()


async def _adrive(conn: psycopg.AsyncConnection[Any], op: Op[T]) -> T:
    steps, wire = op.steps, _wire_of(conn)
    try:
        statement = next(steps)
        while True:
            statement = steps.send(await conn.wait(wire.run(statement)))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
