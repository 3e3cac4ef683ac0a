"""``PgVectorStore``: LangGraph's ``BaseStore`` on Postgres with pgvector.

The logic lives in ``core`` (ops to embed requests and SQL); this module owns the connection pools,
runs a batch's statements in one transaction, and sweeps expired items.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Iterable, Sequence
from contextlib import AsyncExitStack, ExitStack
from typing import Any

import psycopg
from langgraph.store.base import BaseStore, Op, Result, TTLConfig
from pgvector.psycopg import register_vector, register_vector_async
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from durable_graph.memory import core, schema, tuning
from durable_graph.memory.config import Settings, resolve_index
from durable_graph.memory.scoped import ScopedStore
from durable_graph.memory.scopes import ScopeSizes
from durable_graph.memory.sql import Statement
from durable_graph.migrations import amigrate, arun_steps, migrate, run_steps
from durable_graph.recent_first_pool import AsyncRecentFirstPool, RecentFirstPool

logger = logging.getLogger(__name__)

SWEEP_SQL = f"DELETE FROM {schema.ITEMS} WHERE expires_at <= now()"


def _plan_each_run(step: tuple[str, list[Any]] | Statement) -> bool:
    """Whether ``step`` is sent with its values in its text (psycopg's client-side binding), so that
    Postgres plans it for them, as a one-off (see ``sql.Statement``)."""
    return isinstance(step, Statement) and step.plan_each_run


class PgVectorStore(BaseStore):
    """Long-term memory in Postgres: JSON items by namespace and key, searched by meaning.

    ``embed``/``dims``/``fields`` choose what is embedded (see ``config.resolve_index``; LangGraph's
    ``index={"dims", "embed", "fields"}`` works too); ``embed=False`` turns vector search off.
    ``hybrid=True`` fuses vector and full-text ranks for every query; a query starting with
    ``"hybrid:"`` asks for it once. ``ttl`` is LangGraph's ``TTLConfig`` (minutes); with
    ``sweep_interval_minutes`` a background thread deletes expired items while the store is open.
    Open it with ``open()``/``aopen()`` (or ``with open_store(url)``); it also opens on first use.
    """

    supports_ttl = True

    def __init__(
        self,
        conninfo: str,
        *,
        embed: Any = None,
        dims: int | None = None,
        fields: Sequence[str] | None = None,
        index: dict[str, Any] | None = None,
        hybrid: bool = False,
        ttl: TTLConfig | None = None,
        hnsw: schema.HNSWConfig | None = None,
        min_size: int = 1,
        max_size: int = 10,
    ) -> None:
        self.conninfo = conninfo
        self.settings = Settings(resolve_index(embed, dims, fields, index), bool(hybrid))
        self.index = self.settings.index
        self.ttl_config = ttl
        self.hnsw = hnsw or schema.HNSWConfig()
        if self.index:
            self.hnsw = self.hnsw.for_dims(self.index.dims)
        self._hnsw_given = hnsw is not None
        self._pool_sizes = (min_size, max_size)
        self._pool: ConnectionPool | None = None
        self._apool: AsyncConnectionPool | None = None
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._stop_sweeping = threading.Event()
        self._scopes = ScopeSizes()

    def __repr__(self) -> str:
        dims = self.index.dims if self.index else None
        return f"PgVectorStore(dims={dims}, hybrid={self.settings.hybrid})"

    # ------------------------------------------------------------ schema and pools

    def _migrations(self) -> list[tuple[str, list[Any]]]:
        parts: list[tuple[str, list[Any]]] = [("store", schema.STORE_MIGRATIONS)]
        if self.index:
            parts.append(("store-vectors", schema.vector_migrations(self.index.dims, self.hnsw)))
        return parts

    def _search_as_built(self, built: schema.HNSWConfig | None) -> None:
        """Without ``hnsw=``, search the index with the breadth its build needs (an index built by
        an earlier version is sparser than today's default)."""
        if built is not None and not self._hnsw_given:
            self.hnsw = built

    def _session_sql(self) -> str:
        return tuning.session_settings(self.hnsw.ef_search)

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if self.index:
            register_vector(conn)
            conn.execute(self._session_sql().encode())

    async def _aconfigure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if self.index:
            await register_vector_async(conn)
            await conn.execute(self._session_sql().encode())

    def _sync_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    for component, migrations in self._migrations():
                        migrate(conn, component, migrations)
                    if self.index:
                        schema.check_dims(run_steps(conn, schema.stored_dims_steps()), self.index.dims)
                        self._search_as_built(run_steps(conn, schema.built_index_steps()))
                pool = RecentFirstPool(
                    self.conninfo,
                    min_size=self._pool_sizes[0],
                    max_size=self._pool_sizes[1],
                    kwargs={"autocommit": True},
                    configure=self._configure,
                    open=False,
                )
                pool.open(wait=True)
                self._pool = pool
            return self._pool

    async def _async_pool(self) -> AsyncConnectionPool:
        if self._apool is None:
            async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                for component, migrations in self._migrations():
                    await amigrate(conn, component, migrations)
                if self.index:
                    stored = await arun_steps(conn, schema.stored_dims_steps())
                    schema.check_dims(stored, self.index.dims)
                    self._search_as_built(await arun_steps(conn, schema.built_index_steps()))
            pool = AsyncRecentFirstPool(
                self.conninfo,
                min_size=self._pool_sizes[0],
                max_size=self._pool_sizes[1],
                kwargs={"autocommit": True},
                configure=self._aconfigure,
                open=False,
            )
            await pool.open(wait=True)
            if self._apool is None:
                self._apool = pool
            else:
                await pool.close()
        return self._apool

    def open(self) -> None:
        """Create or migrate the schema, open the connection pool, start the TTL sweeper if set."""
        self._sync_pool()
        self._start_configured_sweeper()

    async def aopen(self) -> None:
        await self._async_pool()
        self._start_configured_sweeper()

    def close(self) -> None:
        self.stop_ttl_sweeper()
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        self.stop_ttl_sweeper()
        apool, self._apool = self._apool, None
        if apool is not None:
            await apool.close()
        self.close()

    # ------------------------------------------------------------ batches

    def _embed(self, request: core.EmbedRequest) -> list[list[float]]:
        assert self.index is not None
        embeddings = self.index.embeddings
        if request.kind == "queries" and len(request.texts) == 1:
            return [embeddings.embed_query(request.texts[0])]
        return embeddings.embed_documents(request.texts)

    async def _aembed(self, request: core.EmbedRequest) -> list[list[float]]:
        assert self.index is not None
        embeddings = self.index.embeddings
        if request.kind == "queries" and len(request.texts) == 1:
            return [await embeddings.aembed_query(request.texts[0])]
        return await embeddings.aembed_documents(request.texts)

    def _run(self, steps: Generator[core.Step, Any, Any], atomic: bool) -> Any:
        # Embedding happens before a connection is taken, so a slow embedder holds none.
        # A batch of one read is one statement: it needs no transaction (two round trips fewer).
        with ExitStack() as stack:
            conn: psycopg.Connection[Any] | None = None
            value: Any = None
            while True:
                try:
                    step = steps.send(value)
                except StopIteration as done:
                    return done.value
                if isinstance(step, core.EmbedRequest):
                    value = self._embed(step)
                    continue
                if conn is None:
                    conn = stack.enter_context(self._sync_pool().connection())
                    if atomic:
                        stack.enter_context(conn.transaction())
                cur = psycopg.ClientCursor(conn) if _plan_each_run(step) else conn.cursor()
                cur.execute(step[0].encode(), step[1])
                value = cur.fetchall() if cur.description else None

    async def _arun(self, steps: Generator[core.Step, Any, Any], atomic: bool) -> Any:
        async with AsyncExitStack() as stack:
            conn: psycopg.AsyncConnection[Any] | None = None
            value: Any = None
            while True:
                try:
                    step = steps.send(value)
                except StopIteration as done:
                    return done.value
                if isinstance(step, core.EmbedRequest):
                    value = await self._aembed(step)
                    continue
                if conn is None:
                    pool = await self._async_pool()
                    new_conn = await stack.enter_async_context(pool.connection())
                    if atomic:
                        await stack.enter_async_context(new_conn.transaction())
                    conn = new_conn
                acur = psycopg.AsyncClientCursor(conn) if _plan_each_run(step) else conn.cursor()
                cur = await acur.execute(step[0].encode(), step[1])
                value = await cur.fetchall() if cur.description else None

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        steps = core.batch_steps(self.settings, ops, self._scopes)
        result: list[Result] = self._run(steps, core.needs_transaction(ops))
        return result

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        steps = core.batch_steps(self.settings, ops, self._scopes)
        result: list[Result] = await self._arun(steps, core.needs_transaction(ops))
        return result

    def scoped(self, prefix: tuple[str, ...]) -> ScopedStore:
        """A handle that can only read, list and write below ``prefix`` (namespaces relative to it)."""
        return ScopedStore(self, prefix)

    # ------------------------------------------------------------ TTL

    def sweep_ttl(self) -> int:
        """Delete expired items (and their vectors); return how many were deleted."""
        with self._sync_pool().connection() as conn:
            return conn.execute(SWEEP_SQL.encode()).rowcount

    async def asweep_ttl(self) -> int:
        pool = await self._async_pool()
        async with pool.connection() as conn:
            cur = await conn.execute(SWEEP_SQL.encode())
            return cur.rowcount

    def _start_configured_sweeper(self) -> None:
        interval = (self.ttl_config or {}).get("sweep_interval_minutes")
        if interval:
            self.start_ttl_sweeper(interval)

    def start_ttl_sweeper(self, sweep_interval_minutes: float = 5) -> None:
        """Sweep expired items every ``sweep_interval_minutes`` in a daemon thread until closed."""
        if sweep_interval_minutes <= 0:
            raise ValueError(f"sweep interval must be positive, got {sweep_interval_minutes!r} minutes")
        if self._sweeper is not None and self._sweeper.is_alive():
            return
        self._stop_sweeping.clear()

        def loop() -> None:
            while not self._stop_sweeping.wait(sweep_interval_minutes * 60):
                try:
                    deleted = self.sweep_ttl()
                    if deleted:
                        logger.info("memory store: swept %d expired items", deleted)
                except Exception:
                    logger.exception("memory store: TTL sweep failed; retrying next interval")

        self._sweeper = threading.Thread(target=loop, name="durable-graph-ttl-sweeper", daemon=True)
        self._sweeper.start()

    def stop_ttl_sweeper(self, timeout: float | None = 10) -> bool:
        """Stop the sweeper thread; True when it is no longer running."""
        sweeper = self._sweeper
        if sweeper is None:
            return True
        self._stop_sweeping.set()
        sweeper.join(timeout)
        if sweeper.is_alive():
            return False
        self._sweeper = None
        return True
