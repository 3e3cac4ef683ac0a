"""Checkpointers: LangGraph ``BaseCheckpointSaver`` implementations chosen by URL.

The backend classes are imported lazily so that using one backend does not import the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from durable_graph.checkpointers.factory import open_checkpointer
from durable_graph.lifecycle import Openable

if TYPE_CHECKING:
    from durable_graph.checkpointers.memory import MemoryCheckpointer
    from durable_graph.checkpointers.postgres import PostgresCheckpointer
    from durable_graph.checkpointers.sqlite import SqliteCheckpointer

__all__ = [
    "MemoryCheckpointer",
    "Openable",
    "PostgresCheckpointer",
    "SqliteCheckpointer",
    "open_checkpointer",
]

_LAZY = {
    "MemoryCheckpointer": "durable_graph.checkpointers.memory",
    "PostgresCheckpointer": "durable_graph.checkpointers.postgres",
    "SqliteCheckpointer": "durable_graph.checkpointers.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
