"""The checkpointer's tables, created by versioned migrations (component ``checkpoints``).

- ``dg_checkpoints``: one row per checkpoint. ``channels`` and ``versions`` name the blob of each
  channel whose value is stored apart, and ``checkpoint`` holds the rest of the checkpoint (small
  values with their versions, versions seen, timestamps) serialized. ``metadata`` is jsonb for
  ``list(filter=...)``.
- ``dg_checkpoint_blobs``: one row per channel version, written once by the checkpoint that
  introduced it. A plain list value is stored as ``refs``, the concatenated hashes of its items.
  When the list extends the list of an earlier version (``base``, itself stored in full), only the
  hashes of the new items are stored; a new full version is written once the tail grows past
  about the square root of the base's length, so lists that grow by appends take about
  ``n * sqrt(n)`` hashes in all instead of ``n * n / 2``. A full version also names (``groups``)
  the groups that hold its first ``grouped`` items, so a process new to the thread reads a long
  list as a few rows.
- ``dg_checkpoint_chunks``: the list items, one row per distinct item per thread, and the groups
  of consecutive items (type ``msgpack-items``), each one msgpack array.
- ``dg_checkpoint_writes``: pending writes of tasks, per checkpoint. A write of a list whose items
  average 256 bytes or more serialized (``WRITTEN_ITEM_BYTES``) holds their names, like a list
  version; the items are chunks of the thread, shared with the list the write is added to.

Key columns use the "C" collation: ids sort byte-wise (as LangGraph expects) and compare fast.
"""

from __future__ import annotations

from durable_graph.migrations import Migration

COMPONENT = "checkpoints"

TABLES = ("dg_checkpoints", "dg_checkpoint_blobs", "dg_checkpoint_chunks", "dg_checkpoint_writes")

MIGRATIONS = [
    Migration(
        1,
        """
CREATE TABLE dg_checkpoints (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    parent_checkpoint_id text COLLATE "C",
    channels text[] COLLATE "C" NOT NULL,
    versions text[] COLLATE "C" NOT NULL,
    type text NOT NULL,
    checkpoint bytea NOT NULL,
    metadata jsonb NOT NULL
);
-- Newest first per thread and namespace: get_tuple and list(before=..., limit=...) read this index.
CREATE UNIQUE INDEX dg_checkpoints_newest_first
    ON dg_checkpoints (thread_id, checkpoint_ns, checkpoint_id DESC);
ALTER TABLE dg_checkpoints REPLICA IDENTITY USING INDEX dg_checkpoints_newest_first;
CREATE INDEX dg_checkpoints_metadata ON dg_checkpoints USING gin (metadata jsonb_path_ops);

CREATE TABLE dg_checkpoint_blobs (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    channel text COLLATE "C" NOT NULL,
    version text COLLATE "C" NOT NULL,
    type text NOT NULL,
    data bytea,
    base text COLLATE "C",
    refs bytea,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);

CREATE TABLE dg_checkpoint_chunks (
    thread_id text COLLATE "C" NOT NULL,
    hash bytea NOT NULL,
    type text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (thread_id, hash)
);

CREATE TABLE dg_checkpoint_writes (
    thread_id text COLLATE "C" NOT NULL,
    checkpoint_ns text COLLATE "C" NOT NULL,
    checkpoint_id text COLLATE "C" NOT NULL,
    task_id text COLLATE "C" NOT NULL,
    idx integer NOT NULL,
    task_path text COLLATE "C" NOT NULL,
    channel text NOT NULL,
    type text NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
""",
    ),
    # Small channel values moved into the serialized checkpoint (see ``codec.inlined``), which an
    # earlier durable-graph would not read: the version tells it to refuse the database. No table
    # changes, so a role that may only read and write rows applies it too.
    Migration(2, "SELECT 'small values are kept in the serialized checkpoint'"),
    # A pending write of a long list names its items, stored as list items are (``CHUNKED_TYPE``).
    Migration(3, "SELECT 'pending writes may name list items'"),
    # A full list version names the groups that hold its leading items (``lists``), stored as items.
    Migration(
        4,
        """
ALTER TABLE dg_checkpoint_blobs ADD COLUMN groups bytea, ADD COLUMN grouped integer NOT NULL DEFAULT 0;
""",
    ),
]
