"""Where durable tools record their results: one ``ToolResultLog`` per database, chosen by URL.

The log lives in the checkpointer's database: ``open_tool_log(url)``, or ``tool_log_for(saver)``
for the log beside an open checkpointer. Postgres and SQLite share the statements.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
import weakref
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from durable_graph.backoff import backoff_delays
from durable_graph.checkpointers.codec import Codec
from durable_graph.durable_tools.keys import ToolCallKey
from durable_graph.encryption import Keys
from durable_graph.errors import BackendUnavailableError, LeaseLostError
from durable_graph.leases import backend_of
from durable_graph.leases.fences import TAKEN_OVER, Fence, database_key, fence_for
from durable_graph.lifecycle import Opener
from durable_graph.migrations import Migration, migrate
from durable_graph.urls import BackendURL, parse_url


@dataclass(frozen=True)
class Recorded:
    """What the log knows about a call: how many times it was started, and its result if recorded."""

    attempts: int
    type: str | None
    data: bytes | None

    @property
    def done(self) -> bool:
        return self.type is not None


@dataclass(frozen=True)
class ToolRecord:
    """One logged tool call, as ``ToolResultLog.records`` returns it."""

    key: ToolCallKey
    tool: str
    attempts: int
    done: bool


class ToolResultLog(ABC):
    """Recorded tool results of one database. Async methods run the sync ones in a worker thread."""

    def __init__(self) -> None:
        # Tool results hold what the state holds: encrypted with the same keys.
        self.codec = Codec(JsonPlusSerializer(), keys=Keys.from_env())

    @abstractmethod
    def begin(self, key: ToolCallKey, tool: str) -> Recorded:
        """Count one more start of an unfinished call; return what is recorded for it."""

    @abstractmethod
    def finish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        """Record the result of a call."""

    @abstractmethod
    def records(self, thread_id: str) -> list[ToolRecord]:
        """Every logged call of a thread."""

    @abstractmethod
    def delete_thread(self, thread_id: str) -> None:
        """Forget the calls of a thread (e.g. together with its checkpoints)."""

    @abstractmethod
    def open(self) -> None:
        """Connect and create the table; ``open_tool_log`` calls it."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    async def abegin(self, key: ToolCallKey, tool: str) -> Recorded:
        return await asyncio.to_thread(self.begin, key, tool)

    async def afinish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        await asyncio.to_thread(self.finish, key, type_, data)

    async def aopen(self) -> None:
        await asyncio.to_thread(self.open)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


class MemoryToolLog(ToolResultLog):
    """Results kept in this process (for ``memory://`` and ``sqlite:///:memory:``)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._rows: dict[ToolCallKey, tuple[str, int, str | None, bytes | None]] = {}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def begin(self, key: ToolCallKey, tool: str) -> Recorded:
        with self._lock:
            _, attempts, type_, data = self._rows.get(key, (tool, 0, None, None))
            if type_ is None:
                attempts += 1
            self._rows[key] = (tool, attempts, type_, data)
            return Recorded(attempts, type_, data)

    def finish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        with self._lock:
            tool, attempts, _, _ = self._rows[key]
            self._rows[key] = (tool, attempts, type_, data)

    def records(self, thread_id: str) -> list[ToolRecord]:
        with self._lock:
            return [
                ToolRecord(key, tool, attempts, type_ is not None)
                for key, (tool, attempts, type_, _) in self._rows.items()
                if key.thread_id == thread_id
            ]

    def delete_thread(self, thread_id: str) -> None:
        with self._lock:
            for key in [k for k in self._rows if k.thread_id == thread_id]:
                del self._rows[key]

    async def abegin(self, key: ToolCallKey, tool: str) -> Recorded:
        return self.begin(key, tool)

    async def afinish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        self.finish(key, type_, data)


# The SQL is shared by Postgres and SQLite; SQLite gets ``?`` placeholders instead of ``%s``.
_TABLE = "durable_graph_tool_results"
_CREATE = f"""CREATE TABLE IF NOT EXISTS {_TABLE} (
    thread_id text NOT NULL,
    checkpoint_ns text NOT NULL,
    task_id text NOT NULL,
    call_id text NOT NULL,
    tool text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    result_type text,
    result {{blob}},
    started_at timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
    finished_at timestamp,
    PRIMARY KEY (thread_id, checkpoint_ns, task_id, call_id)
)"""
_BEGIN = f"""INSERT INTO {_TABLE} AS r (thread_id, checkpoint_ns, task_id, call_id, tool)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (thread_id, checkpoint_ns, task_id, call_id) DO UPDATE
SET attempts = r.attempts + (CASE WHEN r.result_type IS NULL THEN 1 ELSE 0 END)
RETURNING attempts, result_type, result"""
_FINISH = f"""UPDATE {_TABLE} SET result_type = %s, result = %s, finished_at = CURRENT_TIMESTAMP
WHERE thread_id = %s AND checkpoint_ns = %s AND task_id = %s AND call_id = %s"""
# A leased run's claim and record (Postgres): written only while the thread's epoch is the run's
# (see ``durable_graph.leases.fences``); no row comes back when another runner took the thread over.
_FENCE = "EXISTS (SELECT 1 FROM dg_thread_leases WHERE thread_id = %s AND epoch = %s FOR SHARE)"
_BEGIN_FENCED = f"""INSERT INTO {_TABLE} AS r (thread_id, checkpoint_ns, task_id, call_id, tool)
SELECT %s, %s, %s, %s, %s WHERE {_FENCE}
ON CONFLICT (thread_id, checkpoint_ns, task_id, call_id) DO UPDATE
SET attempts = r.attempts + (CASE WHEN r.result_type IS NULL THEN 1 ELSE 0 END)
RETURNING attempts, result_type, result"""
_FINISH_FENCED = f"""UPDATE {_TABLE} SET result_type = %s, result = %s, finished_at = CURRENT_TIMESTAMP
WHERE thread_id = %s AND checkpoint_ns = %s AND task_id = %s AND call_id = %s AND {_FENCE}
RETURNING 1"""
_RECORDS = f"""SELECT checkpoint_ns, task_id, call_id, tool, attempts, result_type IS NOT NULL
FROM {_TABLE} WHERE thread_id = %s ORDER BY started_at, checkpoint_ns, task_id, call_id"""
_DELETE = f"DELETE FROM {_TABLE} WHERE thread_id = %s"
POSTGRES_MIGRATIONS = [Migration(1, _CREATE.format(blob="bytea"))]


def _key_params(key: ToolCallKey) -> tuple[str, str, str, str]:
    return (key.thread_id, key.checkpoint_ns, key.task_id, key.call_id)


def _refused(fence: Fence) -> LeaseLostError:
    """The database refused a fenced write: the lease is lost for good."""
    fence.lose(TAKEN_OVER)
    return LeaseLostError(fence.thread_id, TAKEN_OVER)


def _recorded(row: tuple[Any, ...]) -> Recorded:
    attempts, type_, data = row
    return Recorded(int(attempts), type_, bytes(data) if data is not None else None)


def _record(thread_id: str, row: tuple[Any, ...]) -> ToolRecord:
    ns, task_id, call_id, tool, attempts, done = row
    return ToolRecord(ToolCallKey(thread_id, ns, task_id, call_id), tool, int(attempts), bool(done))


class _SqlToolLog(ToolResultLog):
    """The statements of both SQL backends; subclasses only say how to run one."""

    @abstractmethod
    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]: ...

    def begin(self, key: ToolCallKey, tool: str) -> Recorded:
        return _recorded(self._run(_BEGIN, (*_key_params(key), tool))[0])

    def finish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        self._run(_FINISH, (type_, data, *_key_params(key)))

    def records(self, thread_id: str) -> list[ToolRecord]:
        return [_record(thread_id, row) for row in self._run(_RECORDS, (thread_id,))]

    def delete_thread(self, thread_id: str) -> None:
        self._run(_DELETE, (thread_id,))


class PostgresToolLog(_SqlToolLog):
    """Results in table ``durable_graph_tool_results`` of a Postgres database.

    A call of a thread whose lease this process holds is fenced: its claim and its record commit
    only while the lease does, else ``LeaseLostError`` (and the tool does not start). Opening retries
    for ``open_retry_for`` seconds (the log a run opens on its first durable tool call rides out a
    restart); every statement retries for ``retry_for``.
    """

    def __init__(self, conninfo: str, *, retry_for: float = 30.0, open_retry_for: float = 0.0) -> None:
        super().__init__()
        self.conninfo = conninfo
        self.retry_for = retry_for
        self.open_retry_for = open_retry_for
        self._database = database_key(conninfo)
        self._pool: Any = None

    def open(self) -> None:
        import psycopg

        from durable_graph.recent_first_pool import RecentFirstPool

        delays = backoff_delays(self.open_retry_for)
        while True:
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    migrate(conn, "tool_results", POSTGRES_MIGRATIONS)
                break
            except psycopg.OperationalError as exc:
                delay = next(delays, None)
                if delay is None:
                    raise BackendUnavailableError(f"tool result log: cannot reach Postgres: {exc}") from exc
                time.sleep(delay)
        # ``check`` replaces connections that died, e.g. when the server restarted.
        self._pool = RecentFirstPool(
            self.conninfo,
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True},
            timeout=5,
            check=RecentFirstPool.check_connection,
            open=True,
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def begin(self, key: ToolCallKey, tool: str) -> Recorded:
        fence = fence_for(self._database, key.thread_id)
        if fence is None:
            return super().begin(key, tool)
        rows = self._run(_BEGIN_FENCED, (*_key_params(key), tool, key.thread_id, fence.epoch), fence)
        if not rows:
            raise _refused(fence)
        return _recorded(rows[0])

    def finish(self, key: ToolCallKey, type_: str, data: bytes) -> None:
        fence = fence_for(self._database, key.thread_id)
        if fence is None:
            return super().finish(key, type_, data)
        if not self._run(_FINISH_FENCED, (type_, data, *_key_params(key), key.thread_id, fence.epoch), fence):
            raise _refused(fence)

    def _run(self, sql: str, params: tuple[Any, ...], fence: Fence | None = None) -> list[tuple[Any, ...]]:
        """Run one statement, retrying with backoff while the server is unreachable (a restart): a
        tool that ran must not lose its result to a short outage. Both statements are safe to repeat
        (a repeated ``begin`` only over-counts ``attempts``). A fenced statement waits while its
        lease is suspended."""
        import psycopg
        from psycopg_pool import PoolTimeout

        if self._pool is None:
            raise RuntimeError("the tool log is not open: use it inside `with open_tool_log(url)`")
        delays = backoff_delays(self.retry_for)
        while True:
            if fence is not None:
                fence.wait()
            try:
                with self._pool.connection() as conn:
                    cur = conn.execute(sql.encode(), params)
                    return cur.fetchall() if cur.description else []
            except (psycopg.OperationalError, PoolTimeout) as exc:
                delay = next(delays, None)
                if delay is None:
                    raise BackendUnavailableError(
                        f"tool result log: Postgres unreachable for {self.retry_for:.0f}s: {exc}"
                    ) from exc
                time.sleep(delay)


class SqliteToolLog(_SqlToolLog):
    """Results in table ``durable_graph_tool_results`` of the checkpointer's SQLite file."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(_CREATE.format(blob="blob"))
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _run(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._conn is None:
            raise RuntimeError("the tool log is not open: use it inside `with open_tool_log(url)`")
        with self._lock:
            return self._conn.execute(sql.replace("%s", "?"), params).fetchall()


def _build_log(backend: BackendURL, *, open_retry_for: float = 0.0) -> ToolResultLog:
    if backend.kind in ("postgres", "embedded"):
        return PostgresToolLog(backend.postgres_conninfo(), open_retry_for=open_retry_for)
    if backend.kind == "sqlite" and backend.target != ":memory:":
        return SqliteToolLog(backend.target)
    return MemoryToolLog()


def open_tool_log(url: str | None = None) -> Opener[ToolResultLog]:
    """Open the tool result log in the database behind ``url`` (``with`` or ``async with``)."""
    backend = parse_url(url)
    return Opener(lambda: _build_log(backend))


_RIDE_OUT = 30.0
"""Seconds the log of a running graph (``tool_log_for``) retries opening while its server restarts."""
_saver_logs: weakref.WeakKeyDictionary[Any, ToolResultLog] = weakref.WeakKeyDictionary()
_saver_logs_lock = threading.Lock()


def tool_log_for(saver: Any) -> ToolResultLog:
    """The log in the same database as an open checkpointer, opened on first use and closed
    when the checkpointer is garbage collected."""
    with _saver_logs_lock:
        log = _saver_logs.get(saver)
        if log is None:
            log = _build_log(backend_of(saver), open_retry_for=_RIDE_OUT)
            log.open()
            _saver_logs[saver] = log
            weakref.finalize(saver, log.close)
        return log
