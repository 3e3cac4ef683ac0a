"""Connection pools that hand out the idle connection returned last.

psycopg-pool hands out its idle connections in turn, first in, first out. A process that calls the
checkpointer (or the memory store, or the durable tools' log) one call at a time then goes through
every connection its pool has grown to (a graph run with background checkpoint writes grows it to
two or three), and each call meets the server process that has been idle longest, its caches the
coldest: on a 2-core machine that made short checkpoint reads about 7% slower than on a single
connection, and memory searches 3-8%. Taking the connection returned last keeps such
a process on one server process. The other idle connections wait at the front of the queue, where
the pool's shrinking (``max_idle``) closes the least recently used first, as before.

Both pools change only which idle connection ``getconn`` takes; waiting, growing, checking and
closing are psycopg-pool's own.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool, ConnectionPool


class RecentFirstPool(ConnectionPool[Any]):
    """A ``ConnectionPool`` whose ``getconn`` takes the idle connection returned last."""

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # Runs under the pool's lock. Idle connections queue from least to most recently returned,
        # and the pool takes the first: the last is moved to the front (and back, should none be
        # taken).
        self._pool.rotate(1)
        try:
            return super()._get_ready_connection(timeout)
        except BaseException:
            self._pool.rotate(-1)
            raise


class AsyncRecentFirstPool(AsyncConnectionPool[Any]):
    """An ``AsyncConnectionPool`` whose ``getconn`` takes the idle connection returned last."""

    async def _get_ready_connection(self, timeout: float | None) -> Any:
        self._pool.rotate(1)
        try:
            return await super()._get_ready_connection(timeout)
        except BaseException:
            self._pool.rotate(-1)
            raise
