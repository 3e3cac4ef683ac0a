"""The SQLite checkpointer's schema and its ``user_version``-based migrations.

Migrations run in one ``BEGIN IMMEDIATE`` transaction, so processes opening the same file at once
wait for each other and the later ones find nothing to do. A file written by a newer durable-graph
is refused before anything is changed.
"""

from __future__ import annotations

import sqlite3

from durable_graph.errors import SchemaVersionError

# Each entry is (version, statements). Append new versions; never edit a released one.
MIGRATIONS: list[tuple[int, tuple[str, ...]]] = [
    (
        1,
        (
            # One row per checkpoint. ``checkpoint`` is the serialized checkpoint without its
            # channel values; ``channel_versions`` maps channel -> version (as text) for joins.
            """CREATE TABLE dg_checkpoints (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                checkpoint_id TEXT NOT NULL,
                parent_checkpoint_id TEXT,
                run_id TEXT,
                type TEXT NOT NULL,
                checkpoint BLOB NOT NULL,
                metadata TEXT NOT NULL,
                channel_versions TEXT NOT NULL,
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
            ) WITHOUT ROWID""",
            "CREATE INDEX dg_checkpoints_run_id ON dg_checkpoints (run_id) WHERE run_id IS NOT NULL",
            # One row per (channel, version): a value is stored once, whatever number of
            # checkpoints use it. A list value has type 'chunks' and ``refs`` = concatenated hashes.
            """CREATE TABLE dg_checkpoint_blobs (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                channel TEXT NOT NULL,
                version TEXT NOT NULL,
                type TEXT NOT NULL,
                data BLOB,
                refs BLOB,
                PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
            ) WITHOUT ROWID""",
            # List items, content-addressed per thread.
            """CREATE TABLE dg_checkpoint_chunks (
                thread_id TEXT NOT NULL,
                hash BLOB NOT NULL,
                type TEXT NOT NULL,
                data BLOB NOT NULL,
                PRIMARY KEY (thread_id, hash)
            ) WITHOUT ROWID""",
            """CREATE TABLE dg_checkpoint_writes (
                thread_id TEXT NOT NULL,
                checkpoint_ns TEXT NOT NULL,
                checkpoint_id TEXT NOT NULL,
                task_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                task_path TEXT NOT NULL,
                channel TEXT NOT NULL,
                type TEXT NOT NULL,
                data BLOB,
                PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
            ) WITHOUT ROWID""",
        ),
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema of ``conn`` (opened in autocommit mode) up to ``LATEST_VERSION``."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if current > LATEST_VERSION:
            raise SchemaVersionError(
                f"SQLite file {path!r} holds checkpointer schema version {current}, but this "
                f"durable-graph knows versions up to {LATEST_VERSION}: upgrade durable-graph "
                "instead of writing with an old schema (the file was not changed)"
            )
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
        if current != LATEST_VERSION:
            conn.execute(f"PRAGMA user_version = {LATEST_VERSION:d}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
