"""The SQLite checkpointer's statements, metadata filters and garbage collection."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from durable_graph.checkpointers import codec
from durable_graph.checkpointers.codec import CHUNKED_TYPE, HASH_BYTES
from durable_graph.errors import CorruptCheckpointError

CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
)

SELECT_VALUES = """
SELECT v.channel, v.type, v.data, v.refs
FROM dg_checkpoints AS c
JOIN json_each(c.channel_versions) AS j
JOIN dg_checkpoint_blobs AS v
  ON v.thread_id = c.thread_id AND v.checkpoint_ns = c.checkpoint_ns
  AND v.channel = j.key AND v.version = j.value
WHERE c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = ?"""

SELECT_WRITES = """
SELECT task_id, channel, type, data FROM dg_checkpoint_writes
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?
ORDER BY task_path, task_id, idx"""

INSERT_WRITE = """
INSERT OR {conflict} INTO dg_checkpoint_writes
    (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""

DROP_DANGLING_PARENTS = """
UPDATE dg_checkpoints SET parent_checkpoint_id = NULL
WHERE thread_id = ?1 AND parent_checkpoint_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM dg_checkpoints AS p
    WHERE p.thread_id = ?1 AND p.checkpoint_ns = dg_checkpoints.checkpoint_ns
    AND p.checkpoint_id = dg_checkpoints.parent_checkpoint_id)"""

# Delete the writes, then the checkpoints, of all but the ?2 newest checkpoints of each namespace.
KEEP_NEWEST = (
    """DELETE FROM dg_checkpoint_writes WHERE thread_id = ?1 AND checkpoint_id NOT IN (
        SELECT c.checkpoint_id FROM dg_checkpoints AS c
        WHERE c.thread_id = ?1 AND c.checkpoint_ns = dg_checkpoint_writes.checkpoint_ns
        ORDER BY c.checkpoint_id DESC LIMIT ?2)""",
    """DELETE FROM dg_checkpoints WHERE thread_id = ?1 AND checkpoint_id NOT IN (
        SELECT c.checkpoint_id FROM dg_checkpoints AS c
        WHERE c.thread_id = ?1 AND c.checkpoint_ns = dg_checkpoints.checkpoint_ns
        ORDER BY c.checkpoint_id DESC LIMIT ?2)""",
)

SELECT_EXISTS = "SELECT 1 FROM dg_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"

THREAD_TABLES = ("dg_checkpoints", "dg_checkpoint_blobs", "dg_checkpoint_chunks", "dg_checkpoint_writes")

# Columns copied by ``copy_thread``, per table, after ``thread_id``.
COPIED_COLUMNS = {
    "dg_checkpoints": "checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id, type, checkpoint, "
    "metadata, channel_versions",
    "dg_checkpoint_blobs": "checkpoint_ns, channel, version, type, data, refs",
    "dg_checkpoint_chunks": "hash, type, data",
    "dg_checkpoint_writes": "checkpoint_ns, checkpoint_id, task_id, idx, task_path, channel, type, data",
}


@dataclass(frozen=True, slots=True)
class Fetched:
    """The raw rows of one checkpoint tuple, read in one transaction and decoded outside the lock."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    type: str
    checkpoint: bytes
    metadata: str
    values: list[tuple[str, str, bytes | None, bytes | None]]
    chunks: dict[bytes, tuple[str, bytes]]
    writes: list[tuple[str, str, str, bytes | None]]


def split_refs(refs: bytes | None, *, thread_id: str, checkpoint_id: str) -> tuple[bytes, ...]:
    refs = bytes(refs or b"")
    if len(refs) % HASH_BYTES:
        raise CorruptCheckpointError(thread_id, checkpoint_id, f"list references of {len(refs)} bytes")
    return tuple(codec.split_refs(refs))


def json_path(key: str) -> str:
    if '"' in key or "\\" in key:
        raise ValueError(f"metadata filter key {key!r} must not contain quotes or backslashes")
    return f'$."{key}"'


def filter_clause(filter: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """SQL predicates matching ``metadata.get(key) == value`` for every item of ``filter``."""
    wheres: list[str] = []
    params: list[Any] = []
    for key, value in filter.items():
        path = json_path(key)
        if value is None:
            wheres.append("json_extract(metadata, ?) IS NULL")
            params.append(path)
        elif isinstance(value, bool):
            wheres.append("json_type(metadata, ?) = ?")
            params += [path, "true" if value else "false"]
        elif isinstance(value, str | int | float):
            wheres.append(
                "json_type(metadata, ?) IN ('text', 'integer', 'real') AND json_extract(metadata, ?) = ?"
            )
            params += [path, path, value]
        else:
            wheres.append("json_extract(metadata, ?) = json(?)")
            params += [path, json.dumps(value, separators=(",", ":"), ensure_ascii=False)]
    return wheres, params


def collect_garbage(conn: sqlite3.Connection, thread_id: str) -> None:
    """Delete the values no checkpoint of the thread uses, then the list items no value uses."""
    used_versions = set(
        conn.execute(
            "SELECT c.checkpoint_ns, j.key, j.value FROM dg_checkpoints AS c "
            "JOIN json_each(c.channel_versions) AS j WHERE c.thread_id = ?",
            (thread_id,),
        )
    )
    unused: list[tuple[str, str, str, str]] = []
    used_refs: set[bytes] = set()
    for ns, channel, version, type_, refs in conn.execute(
        "SELECT checkpoint_ns, channel, version, type, refs FROM dg_checkpoint_blobs WHERE thread_id = ?",
        (thread_id,),
    ):
        if (ns, channel, version) not in used_versions:
            unused.append((thread_id, ns, channel, version))
        elif type_ == CHUNKED_TYPE and refs:
            used_refs.update(codec.split_refs(refs))
    conn.executemany(
        "DELETE FROM dg_checkpoint_blobs "
        "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?",
        unused,
    )
    unused_chunks = [
        (thread_id, hash_)
        for (hash_,) in conn.execute(
            "SELECT hash FROM dg_checkpoint_chunks WHERE thread_id = ?", (thread_id,)
        )
        if bytes(hash_) not in used_refs
    ]
    conn.executemany("DELETE FROM dg_checkpoint_chunks WHERE thread_id = ? AND hash = ?", unused_chunks)
