"""The Postgres checkpointer, one job per module:

- ``saver``: ``PostgresCheckpointer``, LangGraph's ``BaseCheckpointSaver`` over the two below;
- ``sql``: every operation as statements, parameters and row decoding, without I/O;
- ``pool``: the sync and async connection pools, and the drivers that run an operation;
- ``schema``: the tables, created by versioned migrations;
- ``lists``: which list values a put sends as tails of the lists of the parent checkpoint;
- ``arrays``: binary dumpers for the arrays the statements take.
"""

from durable_graph.checkpointers.postgres.saver import COMPRESS_ABOVE, PostgresCheckpointer

__all__ = ["COMPRESS_ABOVE", "PostgresCheckpointer"]
