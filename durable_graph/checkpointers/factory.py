"""``open_checkpointer(url)``: a context manager, for ``with`` and ``async with`` alike."""

from __future__ import annotations

from langgraph.checkpoint.base import BaseCheckpointSaver

from durable_graph.lifecycle import Opener
from durable_graph.urls import BackendURL, parse_url


def _build_saver(parsed: BackendURL) -> BaseCheckpointSaver:
    if parsed.kind in ("postgres", "embedded"):
        from durable_graph.checkpointers.postgres import PostgresCheckpointer

        return PostgresCheckpointer(parsed.postgres_conninfo())
    if parsed.kind == "sqlite":
        from durable_graph.checkpointers.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(parsed.target)
    from durable_graph.checkpointers.memory import MemoryCheckpointer

    return MemoryCheckpointer()


def open_checkpointer(url: str | None = None) -> Opener:
    """Open the checkpointer behind ``url`` (default: ``$DURABLE_GRAPH_URL``, else ``embedded://``).

    ``with open_checkpointer(url) as saver`` and ``async with open_checkpointer(url) as saver`` both
    yield a saver that ``graph.invoke`` and ``graph.ainvoke`` can use. The schema is created or
    migrated on open. A bad URL raises ``InvalidURLError`` at once.
    """
    parsed = parse_url(url)
    return Opener(lambda: _build_saver(parsed))  # type: ignore[arg-type,return-value]
