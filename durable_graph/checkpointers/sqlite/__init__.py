"""The SQLite checkpointer: ``saver`` (the ``BaseCheckpointSaver``), ``sql`` (its statements, metadata
filters and garbage collection) and ``schema`` (tables and their versions)."""

from durable_graph.checkpointers.sqlite.saver import SqliteCheckpointer

__all__ = ["SqliteCheckpointer"]
