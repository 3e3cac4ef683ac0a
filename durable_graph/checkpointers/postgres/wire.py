"""The checkpointer's statements, run on a pooled connection's libpq connection past psycopg's cursors.

A psycopg cursor's ``execute`` and ``fetchall`` keep state for any statement a user may send: the
cursor's result and description, a cache of prepared statements keyed by each query's text, and,
on an async connection, a lock and a coroutine per call. That costs about 25-30 µs of client CPU
per statement on an async connection, and with many threads at once on a local socket the client's
CPU is what bounds a saver. The checkpointer sends a bounded set of statements of its own, so each
connection keeps them prepared under names of its own (``Wire``); the connection's adapters dump a
statement's parameters and load its rows, in binary, as a cursor would. Between ops a connection
keeps its last result, as a cursor did.

The first time a connection runs a statement with given parameter types, the preparation travels
in a libpq pipeline with the execution: one round trip, not two. A connection that lost its
prepared statements (``DEALLOCATE ALL`` or ``DISCARD ALL`` run on it) prepares each again when it
next runs it; inside a transaction, the statement fails with ``InvalidSqlStatementName`` instead,
and the next op prepares it. Each call is a generator that psycopg's ``Connection.wait`` (sync) or
``AsyncConnection.wait`` (async) drives, so both paths share this code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import abc, errors, generators, pq
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq.abc import PGresult

from durable_graph.checkpointers.postgres.sql import Rows, Statement

_PLACEHOLDER = re.compile(r"%\((\w+)\)b")
_NO_SUCH_STATEMENT = b"26000"  # invalid_sql_statement_name
_BINARY = pq.Format.BINARY


@dataclass(frozen=True, slots=True)
class _Converted:
    """A statement's text with ``$n`` placeholders, the parameter each one takes, and the format
    each is dumped in (binary, as ``%(name)b`` asks)."""

    query: bytes
    names: tuple[str, ...]
    formats: tuple[PyFormat, ...]


@lru_cache(maxsize=256)  # the statements are the checkpointer's own, a few dozen texts
def _converted(sql: str) -> _Converted:
    """``%(name)b`` placeholders (the only kind the checkpointer's statements use) as ``$n``."""
    names: list[str] = []

    def numbered(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    query = _PLACEHOLDER.sub(numbered, sql).encode()
    return _Converted(query, tuple(names), (PyFormat.BINARY,) * len(names))


@dataclass(slots=True)
class Wire:
    """One connection's prepared statements, by text and parameter types, and its adapters."""

    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]
    transformer: abc.Transformer
    prepared: dict[tuple[Any, ...], bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Wire:
        return cls(conn, Transformer(conn))

    def run(self, statement: Statement) -> PQGen[Rows]:
        """Sends ``statement``, waits for its result and returns its rows (none unless it returns
        rows); a server error is raised as psycopg raises it."""
        converted = _converted(statement.sql)
        transformer, pgconn = self.transformer, self.conn.pgconn
        values = [statement.params[name] for name in converted.names]
        data = transformer.dump_sequence(values, converted.formats)
        types, formats = transformer.types, transformer.formats
        key = (statement.sql, types)
        name = self.prepared.get(key)
        if name is None:
            result = yield from self._prepare_and_run(key, converted.query, data, formats)
        else:
            pgconn.send_query_prepared(name, data, param_formats=formats, result_format=_BINARY)
            results = yield from generators.execute(pgconn)
            if _deallocated(results):
                # DEALLOCATE ALL or DISCARD ALL ran on this connection: nothing of ours is prepared.
                self.prepared.clear()
                if pgconn.transaction_status != pq.TransactionStatus.IDLE:
                    self._checked(results)  # the transaction failed with it; the next op prepares
                result = yield from self._prepare_and_run(key, converted.query, data, formats)
            else:
                result = self._checked(results)
        if result.status != pq.ExecStatus.TUPLES_OK:
            return []
        transformer.set_pgresult(result)
        return transformer.load_rows(0, result.ntuples, tuple)

    def _prepare_and_run(
        self, key: tuple[Any, ...], query: bytes, data: Any, formats: Any
    ) -> PQGen[PGresult]:
        """Prepares ``query`` for ``key`` (its text and parameter types) and runs it, in one pipeline:
        one round trip."""
        pgconn, types = self.conn.pgconn, key[1]
        name = f"dg_{len(self.prepared)}".encode()
        pgconn.enter_pipeline_mode()
        try:
            pgconn.send_prepare(name, query, param_types=types)
            pgconn.send_query_prepared(name, data, param_formats=formats, result_format=_BINARY)
            pgconn.pipeline_sync()
            yield from generators.send(pgconn)
            prepared = yield from generators.fetch_many(pgconn)
            executed = yield from generators.fetch_many(pgconn)
            yield from generators.fetch_many(pgconn)  # the pipeline's sync
            pgconn.exit_pipeline_mode()
        except BaseException:
            pgconn.finish()  # left in the middle of a pipeline: the pool discards a closed connection
            raise
        self._checked(prepared)
        self.prepared[key] = name  # even if it then failed to run
        return self._checked(executed)

    def _checked(self, results: list[PGresult]) -> PGresult:
        """The last of a statement's results, or its error raised as psycopg raises it."""
        for result in results:
            if result.status == pq.ExecStatus.FATAL_ERROR:
                raise errors.error_from_result(result, encoding=self.conn.info.encoding)
        return results[-1]


def _deallocated(results: list[PGresult]) -> bool:
    """Whether the statement failed because its prepared statement no longer exists."""
    return any(
        result.status == pq.ExecStatus.FATAL_ERROR
        and result.error_field(pq.DiagnosticField.SQLSTATE) == _NO_SUCH_STATEMENT
        for result in results
    )
