"""Entry points for LangGraph's Agent Server (``langgraph dev``, langgraph-api): our checkpointer
and memory store, named in ``langgraph.json``::

    "checkpointer": {"path": "durable_graph.server.checkpointer"},
    "store": {"path": "durable_graph.server.store"}

Both open the backend named by ``$DURABLE_GRAPH_URL`` (default ``embedded://``) when the server
starts and close it when the server stops. An embedded Postgres started here is released when the
last of them closes, so a server stopped with SIGTERM or Ctrl-C leaves no Postgres behind.

The checkpointer also opens the durable tools' result log in the same database: graphs give it to
their tools with ``durable(tool, log=tool_log())``. (A durable tool left to find its log by itself
would open one per run: the server hands each run a new wrapper around our saver.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from durable_graph import embedded
from durable_graph.checkpointers import open_checkpointer
from durable_graph.durable_tools import ToolResultLog, open_tool_log
from durable_graph.errors import InvalidURLError
from durable_graph.memory import open_store
from durable_graph.urls import URL_ENV, BackendURL, parse_url

_users_lock = threading.Lock()
_embedded_users: dict[Path, int] = {}
_tool_logs: list[ToolResultLog] = []  # one per open checkpointer(): the server may open one per thread


def server_backend(url: str | None = None) -> BackendURL:
    """The backend the server's entry points open: ``url``, else ``$DURABLE_GRAPH_URL``, else
    ``embedded://``. Refuses backends that keep nothing across a restart of the server."""
    backend = parse_url(url)
    if backend.kind == "memory" or (backend.kind == "sqlite" and backend.target == ":memory:"):
        raise InvalidURLError(
            f"{URL_ENV}={backend.url!r} keeps threads in the server's memory, lost when it stops; "
            "use embedded:// (the default), postgresql://... or sqlite:///file.db"
        )
    return backend


def _data_dir(backend: BackendURL) -> Path:
    return Path(backend.target).expanduser().resolve() if backend.target else embedded.default_data_dir()


@asynccontextmanager
async def _database(backend: BackendURL) -> AsyncIterator[str]:
    """The URL to open for ``backend``: for ``embedded://``, the started server's, released when
    the last entry point of this process using it exits."""
    if backend.kind != "embedded":
        yield backend.url
        return
    data_dir = _data_dir(backend)
    # Starting Postgres blocks for seconds: not on the server's event loop.
    conninfo = await asyncio.to_thread(embedded.start, data_dir)
    with _users_lock:
        _embedded_users[data_dir] = _embedded_users.get(data_dir, 0) + 1
    try:
        yield conninfo
    finally:
        with _users_lock:
            _embedded_users[data_dir] -= 1
            last = _embedded_users[data_dir] == 0
            if last:
                del _embedded_users[data_dir]
        if last:
            await asyncio.to_thread(embedded.release, data_dir)


@asynccontextmanager
async def checkpointer() -> AsyncIterator[BaseCheckpointSaver]:
    """The checkpointer behind ``$DURABLE_GRAPH_URL``, for ``langgraph.json``'s ``checkpointer.path``,
    with the durable tools' result log beside it (``tool_log()``)."""
    backend = server_backend()
    async with _database(backend) as url, open_checkpointer(url) as saver, open_tool_log(url) as log:
        _tool_logs.append(log)
        try:
            yield saver
        finally:
            _tool_logs.remove(log)


def tool_log() -> ToolResultLog:
    """The durable tools' result log of the running server, opened by ``checkpointer()``."""
    if not _tool_logs:
        raise RuntimeError(
            "the server's checkpointer is not open: name durable_graph.server.checkpointer as "
            "'checkpointer.path' in langgraph.json, and call tool_log() when the graph is built"
        )
    return _tool_logs[-1]


@asynccontextmanager
async def store() -> AsyncIterator[BaseStore]:
    """The pgvector memory store behind ``$DURABLE_GRAPH_URL``, for ``langgraph.json``'s
    ``store.path``. It needs Postgres: ``embedded://`` or ``postgresql://``."""
    backend = server_backend()
    if backend.kind == "sqlite":
        raise InvalidURLError(
            f"{URL_ENV}={backend.url!r}: the memory store needs Postgres (embedded:// or postgresql://); "
            "drop the 'store' entry of langgraph.json to keep the server's own store"
        )
    async with _database(backend) as url, open_store(url) as opened:
        yield opened
