"""The Postgres checkpointer's logic without I/O: SQL text, parameters and row decoding.

Every operation is an ``Op``: a generator that yields ``Statement``s and receives each one's rows,
returning the operation's result. The sync and the async checkpointer drive the same ops, so the
two paths cannot drift apart. ``put``, ``put_writes`` and ``get_tuple`` are one statement each
(data-modifying CTEs and ``unnest`` of arrays), hence one network round trip; a put sends the
statement again, with every list item, only when the parent checkpoint it relied on is gone.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Container, Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from typing import Any, Generic, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from psycopg.types.json import Jsonb

from durable_graph.checkpointers.codec import (
    CHUNKED_TYPE,
    EMPTY_TYPE,
    HASH_BYTES,
    INLINE_VERSIONS,
    Codec,
    inlined,
    split_refs,
)
from durable_graph.checkpointers.common import (
    DELTA_METADATA_KEY,
    check_copy,
    check_prune_args,
    check_prune_keep_args,
    check_run_ids,
    config_address,
    delta_refusal,
)
from durable_graph.checkpointers.pages import Cursor
from durable_graph.checkpointers.postgres.arrays import ByteaArray, IntArray, TextArray
from durable_graph.checkpointers.postgres.lists import (
    ListMemory,
    Remembered,
    StoredList,
    ThreadKey,
    store_list,
    to_group,
)
from durable_graph.checkpointers.thread_cache import (
    DEFAULT_CACHE_BYTES,
    ListArray,
    StoredItem,
    item_cache,
    list_array_cache,
)
from durable_graph.errors import CorruptCheckpointError, LeaseLostError
from durable_graph.leases.fences import TAKEN_OVER

T = TypeVar("T")
Rows = list[tuple[Any, ...]]

BODY_COMPRESS_ABOVE = 2048
"""A checkpoint's body (its versions and small values) is compressed only above this size. It is
written at every put, which the graph waits for with ``durability="sync"``, and zlib's set-up
dominates compressing a 1 KB body (about 35 us, the compressing thread then waits for the GIL it
gave up); values and list items, compressed once per version or item, keep ``compress_above``."""


@dataclass(frozen=True, slots=True)
class Statement:
    sql: str
    params: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class TaskWrites:
    """One ``put_writes`` call, checked and encoded: rows of ``(idx, channel, type, data)``, and the
    list items that rows of ``CHUNKED_TYPE`` name, as ``hash: (type, data)``."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    rows: list[tuple[int, str, str, bytes]]
    items: dict[bytes, tuple[str, bytes]] = field(default_factory=dict)


@dataclass(slots=True)
class Op(Generic[T]):
    """An operation's statements, each its own transaction. They may raise ``SnapshotNeeded``: the
    operation ``in_snapshot`` makes is then run in one read-only REPEATABLE READ transaction."""

    steps: Generator[Statement, Rows, T]
    in_snapshot: Callable[[], Op[T]] | None = None


def _read_again_in_snapshot(
    steps: Callable[..., Generator[Statement, Rows, T]],
) -> Op[T]:
    """The operation of ``steps(in_snapshot=False)``, whose statements run apart, and in one snapshot
    as ``steps(in_snapshot=True)`` when they saw the database change in between."""
    return Op(steps(in_snapshot=False), in_snapshot=lambda: Op(steps(in_snapshot=True)))


class SnapshotNeeded(Exception):
    """A later statement of an ``Op`` found the database changed since an earlier one (an item the
    first named was gone by the second: a prune or delete in between)."""


# Hashes of a ``refs`` column, one row each: ``refs`` concatenates HASH_BYTES-long hashes.
_SPLIT_REFS = f"generate_series(0, length({{refs}}) / {HASH_BYTES} - 1)"
_REF_AT = f"substring({{refs}} FROM {{i}} * {HASH_BYTES} + 1 FOR {HASH_BYTES})"

# The new chunks, blobs and checkpoint, written only if ``needs_parent`` is false or the parent
# checkpoint exists: the client left out the items the parent's lists hold and may store a list as
# a tail of a version the parent uses (see ``lists``). ``ok`` tells which happened. A leased run's
# put is also fenced: it writes only while the thread's epoch is the run's (``fenced``).
_PUT = """
WITH guard AS MATERIALIZED (
    SELECT NOT %(needs_parent)b OR EXISTS (
        SELECT 1 FROM dg_checkpoints
        WHERE thread_id = %(thread_id)b AND checkpoint_ns = %(checkpoint_ns)b
          AND checkpoint_id = %(parent_checkpoint_id)b
    ) AS ok, {fence} AS fenced
), new_chunks AS (
    INSERT INTO dg_checkpoint_chunks (thread_id, hash, type, data)
    SELECT %(thread_id)b, u.hash, u.type, u.data
    FROM guard AS g,
         unnest(%(chunk_hashes)b::bytea[], %(chunk_types)b::text[], %(chunk_data)b::bytea[])
             AS u(hash, type, data)
    WHERE g.ok AND g.fenced
    ON CONFLICT (thread_id, hash) DO NOTHING
), new_blobs AS (
    INSERT INTO dg_checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, data, base, refs,
                                     groups, grouped)
    SELECT %(thread_id)b, %(checkpoint_ns)b, u.channel, u.version, u.type, u.data, u.base, u.refs,
           u.groups, u.grouped
    FROM guard AS g,
         unnest(%(blob_channels)b::text[], %(blob_versions)b::text[], %(blob_types)b::text[],
                %(blob_data)b::bytea[], %(blob_bases)b::text[], %(blob_refs)b::bytea[],
                %(blob_groups)b::bytea[], %(blob_grouped)b::int[])
             AS u(channel, version, type, data, base, refs, groups, grouped)
    WHERE g.ok AND g.fenced
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), new_checkpoint AS (
    INSERT INTO dg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
                                channels, versions, type, checkpoint, metadata)
    SELECT %(thread_id)b, %(checkpoint_ns)b, %(checkpoint_id)b, %(parent_checkpoint_id)b,
           %(channels)b::text[], %(versions)b::text[], %(type)b, %(checkpoint)b, %(metadata)b
    FROM guard AS g WHERE g.ok AND g.fenced
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        channels = EXCLUDED.channels, versions = EXCLUDED.versions, type = EXCLUDED.type,
        checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata
){carried}
SELECT ok, fenced FROM guard
"""

# A task's regular writes are kept as first saved; its special writes (errors, interrupts...)
# are replaced, as LangGraph's own savers do.
_WRITES_CONFLICT = """ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        task_path = EXCLUDED.task_path, channel = EXCLUDED.channel, type = EXCLUDED.type,
        data = EXCLUDED.data
    WHERE EXCLUDED.idx < 0"""

# Pending writes of the parent checkpoint that a put carries (``outbox``): stored whether or
# not the parent exists, as ``put_writes`` stores them, but only while the run holds the thread.
_CARRIED = f""", carried_writes AS (
    INSERT INTO dg_checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,
                                      idx, channel, type, data)
    SELECT %(thread_id)b, %(checkpoint_ns)b, %(parent_checkpoint_id)b, u.task_id, u.task_path,
           u.idx, u.channel, u.type, u.data
    FROM guard AS g,
         unnest(%(w_task_ids)b::text[], %(w_task_paths)b::text[], %(w_idxs)b::int[],
                %(w_channels)b::text[], %(w_types)b::text[], %(w_data)b::bytea[])
             AS u(task_id, task_path, idx, channel, type, data)
    WHERE g.fenced
    {_WRITES_CONFLICT}
)"""


# The commit does not wait for the disk: the next checkpoint's commit flushes the log up to
# itself, these writes included (see docs/postgres.md). ``{{items}}``: the list items that writes
# name, when they name any (``_WRITTEN_ITEMS``).
_PUT_WRITES = f"""
WITH fence AS MATERIALIZED (SELECT {{fence}} AS ok){{items}}, written AS (
    INSERT INTO dg_checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,
                                      idx, channel, type, data)
    SELECT %(thread_id)b, %(checkpoint_ns)b, %(checkpoint_id)b, %(task_id)b, %(task_path)b,
           u.idx, u.channel, u.type, u.data
    FROM fence,
         unnest(%(idxs)b::int[], %(channels)b::text[], %(types)b::text[], %(data)b::bytea[])
             AS u(idx, channel, type, data)
    CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS commit_without_flush
    WHERE fence.ok
    {_WRITES_CONFLICT}
)
SELECT ok FROM fence
"""

# The fence of a leased run's write: the thread's epoch is still the run's. The share lock makes a
# takeover (which raises the epoch under a row lock) wait for this write, and a write that comes
# after the takeover finds the new epoch (see ``durable_graph.leases.fences``).
_FENCE = """EXISTS (
        SELECT 1 FROM dg_thread_leases WHERE thread_id = %(thread_id)b AND epoch = %(epoch)b FOR SHARE)"""


def _fenced(statement: str) -> tuple[str, str]:
    """``statement`` for an unleased write, and for a leased one."""
    return statement.format(fence="true"), statement.format(fence=_FENCE)


_PUT_FREE, _PUT_FENCED = _fenced(_PUT.replace("{carried}", ""))
_PUT_CARRYING_FREE, _PUT_CARRYING_FENCED = _fenced(_PUT.replace("{carried}", _CARRIED))
_WRITTEN_ITEMS = """, written_items AS (
    INSERT INTO dg_checkpoint_chunks (thread_id, hash, type, data)
    SELECT %(thread_id)b, u.hash, u.type, u.data
    FROM fence, unnest(%(chunk_hashes)b::bytea[], %(chunk_types)b::text[], %(chunk_data)b::bytea[])
             AS u(hash, type, data)
    WHERE fence.ok
    ON CONFLICT (thread_id, hash) DO NOTHING
)"""
_PUT_WRITES_STATEMENTS = {
    naming_items: _fenced(_PUT_WRITES.replace("{items}", _WRITTEN_ITEMS if naming_items else ""))
    for naming_items in (False, True)
}
"""``put_writes``'s statements, unleased and leased, by whether its writes name list items."""

_BLOB_REFS = 12
"""Position of the blobs' ``refs`` in a row of ``_SELECT_TUPLES`` as ``_unpacked`` gives it; their
versions, bases and base lengths follow, then their groups and how many items those hold
(``_BLOB_GROUPS``), then the pending writes at ``_WRITES``."""
_BLOB_GROUPS = _BLOB_REFS + 4
_WRITES = _BLOB_REFS + 6

# Checkpoint rows of ``{page}`` with their blobs and pending writes, plus the list items
# (``{chunk_columns}``, ``{chunk_join}``) when asked for, in ``{order}``. ``{blobs_unless}`` may leave
# the blobs out (their columns NULL) of a row the client knows them of (``_KNOWN``). A list's
# groups are its full version's: its own, or its base's. ``b.named``: the hashes a process new to
# the thread reads the lists by, their groups and the items past them; ``w.named``: the items the
# pending writes hold.
# The blobs' and the writes' columns come packed, several in one array of arrays (a row of
# ``_unpacked`` has them apart): Postgres sets each aggregate up at every run, about 1 us each.
_SELECT_TUPLES = f"""
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, c.checkpoint,
       c.metadata, c.channels, c.versions, b.texts, b.bytes, b.ints, w.texts, w.idxs, w.data{{chunk_columns}}
FROM ({{page}}) AS c
CROSS JOIN LATERAL (
    SELECT array_agg(ARRAY[bl.channel, bl.type, v.version, bl.base]) AS texts,
           array_agg(ARRAY[bl.data, l.refs, l.groups]) AS bytes,
           array_agg(ARRAY[coalesce(length(base.refs), 0), l.grouped]) AS ints,
           string_agg(substring(l.refs FROM l.grouped * {HASH_BYTES} + 1) || coalesce(l.groups, ''), '')
               AS named,
           coalesce(sum(l.grouped), 0) AS grouped_items
    FROM unnest(c.channels, c.versions) AS v(channel, version)
    CROSS JOIN LATERAL (
        SELECT bl.channel, bl.type, bl.data, bl.base, bl.refs, bl.groups, bl.grouped
        FROM dg_checkpoint_blobs AS bl
        WHERE bl.thread_id = c.thread_id AND bl.checkpoint_ns = c.checkpoint_ns
          AND bl.channel = v.channel AND bl.version = v.version
        LIMIT 1
    ) AS bl
    LEFT JOIN LATERAL (
        SELECT base.refs, base.groups, base.grouped FROM dg_checkpoint_blobs AS base
        WHERE base.thread_id = c.thread_id AND base.checkpoint_ns = c.checkpoint_ns
          AND base.channel = bl.channel AND base.version = bl.base
        LIMIT 1
    ) AS base ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN bl.base IS NULL THEN bl.refs ELSE base.refs || bl.refs END AS refs,
               CASE WHEN bl.base IS NULL THEN bl.groups ELSE base.groups END AS groups,
               coalesce(CASE WHEN bl.base IS NULL THEN bl.grouped ELSE base.grouped END, 0) AS grouped
    ) AS l{{blobs_unless}}
) AS b
CROSS JOIN LATERAL (
    SELECT array_agg(ARRAY[wr.task_id, wr.task_path, wr.channel, wr.type]) AS texts,
           array_agg(wr.idx) AS idxs, array_agg(wr.data) AS data,
           string_agg(wr.data, '') FILTER (WHERE wr.type = '{CHUNKED_TYPE}') AS named
    FROM dg_checkpoint_writes AS wr
    WHERE wr.thread_id = c.thread_id AND wr.checkpoint_ns = c.checkpoint_ns
      AND wr.checkpoint_id = c.checkpoint_id
) AS w{{chunk_join}}{{order}}
"""
_LIST_ORDER = "\nORDER BY c.checkpoint_id DESC, c.thread_id DESC, c.checkpoint_ns DESC"

_CHUNK_COLUMNS = """,
       CASE WHEN k.complete THEN k.items ELSE l.items END,
       CASE WHEN k.complete THEN k.types ELSE l.types END"""
_PACKED_CHUNKS = 15
"""Position of the list items' columns in a row of ``_SELECT_TUPLES`` that has them: their names
and bytes as pairs, and their types (``_chunk_columns``)."""
_CHUNKS = _WRITES + 6
"""Position of the items' names, types and bytes in the row ``_unpacked`` gives."""


def _unpacked(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row of ``_SELECT_TUPLES`` with its packed columns apart: one array per column of the blobs
    (channels, types, data, refs, versions, bases, base lengths, groups, grouped) and of the writes
    (task ids, task paths, indexes, channels, types, data); None where the row has none."""
    texts, data, numbers, write_texts, idxs, write_data = row[9:_PACKED_CHUNKS]
    if texts is None:
        blobs: tuple[Any, ...] = (None,) * 9
    else:
        channels, types, versions, bases = zip(*texts, strict=True)
        values, refs, groups = zip(*data, strict=True)
        base_lengths, grouped = zip(*numbers, strict=True)
        blobs = (channels, types, values, refs, versions, bases, base_lengths, groups, grouped)
    if write_texts is None:
        writes: tuple[Any, ...] = (None,) * 6
    else:
        task_ids, task_paths, write_channels, write_types = zip(*write_texts, strict=True)
        writes = (task_ids, task_paths, idxs, write_channels, write_types, write_data)
    return (*row[:9], *blobs, *writes, *_chunk_columns(*row[_PACKED_CHUNKS:]))


def _chunk_columns(*packed: Any) -> tuple[Any, ...]:
    """The items' names, types and bytes from ``_CHUNK_COLUMNS`` (None each when it found none),
    nothing when the statement did not ask for them."""
    if not packed:
        return ()
    pairs, types = packed
    if pairs is None:
        return (None, None, None)
    hashes, data = zip(*pairs, strict=True)
    return (hashes, types, data)


def _items_join(thread_id: str, wanted: str, names: str, scan: str = "true") -> str:
    """Joins the items named by ``names`` (a query of ``wanted`` hashes) of thread ``thread_id``, as
    ``_CHUNK_COLUMNS`` reads them: the thread's items in key order, up to one more than twice the
    number wanted (``k``). When that reads them all (a list that grows by appends, the usual case,
    holds all but a few of the thread's items), they are the answer, for a fraction of the cost of
    looking each one up. Otherwise (lists replaced at every step, a checkpoint far back in a long
    thread) each wanted item is looked up (``l``). Postgres sets that lookup up at every read, about
    10 µs, which is less than the round trip a second statement would cost. ``scan`` false skips
    the scan where it cannot read them all (lists read by groups: the items in the groups are
    not wanted)."""
    return f"""
CROSS JOIN LATERAL (
    SELECT array_agg(ARRAY[i.hash, i.data]) AS items, array_agg(i.type) AS types,
           ({scan}) AND coalesce(cardinality(array_agg(i.type)), 0) <= 2 * ({wanted}) AS complete
    FROM (
        SELECT ch.hash, ch.type, ch.data FROM dg_checkpoint_chunks AS ch
        WHERE ({wanted}) > 0 AND ({scan}) AND ch.thread_id = {thread_id}
        ORDER BY ch.hash LIMIT 2 * ({wanted}) + 1
    ) AS i
) AS k
LEFT JOIN LATERAL (
    SELECT array_agg(ARRAY[ch.hash, ch.data]) AS items, array_agg(ch.type) AS types
    FROM dg_checkpoint_chunks AS ch
    WHERE NOT k.complete AND ch.thread_id = {thread_id} AND ch.hash = ANY(ARRAY({names}))
) AS l ON true"""


# The groups and list items the row's lists and pending writes name (``b.named`` and ``w.named``).
_NAMED = "(coalesce(b.named, '') || coalesce(w.named, ''))"
_CHUNK_JOIN = _items_join(
    "c.thread_id",
    f"length({_NAMED}) / {HASH_BYTES}",
    f"SELECT {_REF_AT.format(refs=_NAMED, i='i')} FROM {_SPLIT_REFS.format(refs=_NAMED)} AS i",
    scan="b.grouped_items = 0",
)

_THREAD_PAGE = (
    "SELECT * FROM dg_checkpoints WHERE thread_id = %(thread_id)b AND checkpoint_ns = %(checkpoint_ns)b"
)
_KNOWN = "\n    WHERE c.checkpoint_id <> %(known_id)b"
_GET_TUPLE = {
    (by_id, with_items): _SELECT_TUPLES.format(
        page=_THREAD_PAGE
        + (" AND checkpoint_id = %(checkpoint_id)b" if by_id else " ORDER BY checkpoint_id DESC LIMIT 1"),
        chunk_columns=_CHUNK_COLUMNS if with_items else "",
        chunk_join=_CHUNK_JOIN if with_items else "",
        blobs_unless="" if with_items else _KNOWN,
        order="",
    )
    for by_id in (False, True)
    for with_items in (False, True)
}
"""``get_tuple``'s statement by (whether the config names the checkpoint, whether the items come too).
Without the items, the blobs of checkpoint ``known_id`` are left out ("": none is known)."""

# The items ``wanted`` (concatenated hashes) of each of the threads ``thread_ids``, one row per
# thread with them as arrays.
_SELECT_CHUNKS = (
    "SELECT t.thread_id"
    + _CHUNK_COLUMNS
    + "\nFROM unnest(%(thread_ids)b::text[], %(wanted)b::bytea[]) AS t(thread_id, refs)"
    + _items_join(
        "t.thread_id",
        f"length(t.refs) / {HASH_BYTES}",
        f"SELECT {_REF_AT.format(refs='t.refs', i='i')} FROM {_SPLIT_REFS.format(refs='t.refs')} AS i",
    )
)

_DELETE_THREADS = """
WITH deleted_checkpoints AS (
    DELETE FROM dg_checkpoints WHERE thread_id = ANY(%(thread_ids)b::text[])
), deleted_blobs AS (
    DELETE FROM dg_checkpoint_blobs WHERE thread_id = ANY(%(thread_ids)b::text[])
), deleted_chunks AS (
    DELETE FROM dg_checkpoint_chunks WHERE thread_id = ANY(%(thread_ids)b::text[])
)
DELETE FROM dg_checkpoint_writes WHERE thread_id = ANY(%(thread_ids)b::text[])
"""

# Deletes the checkpoints selected by ``{doomed}`` (a condition on ``c``) with their writes, then
# the blobs and chunks of the affected threads that no remaining checkpoint uses. All parts see
# the snapshot taken when the statement starts.
_DELETE_CHECKPOINTS = f"""
WITH doomed AS MATERIALIZED (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id FROM dg_checkpoints AS c WHERE {{doomed}}
), threads AS (
    SELECT DISTINCT thread_id FROM doomed
), kept AS MATERIALIZED (
    SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.channels, c.versions
    FROM dg_checkpoints AS c
    WHERE c.thread_id IN (SELECT thread_id FROM threads)
      AND NOT EXISTS (SELECT 1 FROM doomed AS d WHERE d.thread_id = c.thread_id
                      AND d.checkpoint_ns = c.checkpoint_ns AND d.checkpoint_id = c.checkpoint_id)
), kept_versions AS MATERIALIZED (
    SELECT DISTINCT k.thread_id, k.checkpoint_ns, v.channel, v.version
    FROM kept AS k, unnest(k.channels, k.versions) AS v(channel, version)
), kept_blobs AS MATERIALIZED (
    SELECT thread_id, checkpoint_ns, channel, version FROM kept_versions
    UNION
    SELECT bl.thread_id, bl.checkpoint_ns, bl.channel, bl.base
    FROM kept_versions AS kv
    JOIN dg_checkpoint_blobs AS bl
      ON bl.thread_id = kv.thread_id AND bl.checkpoint_ns = kv.checkpoint_ns
     AND bl.channel = kv.channel AND bl.version = kv.version
    WHERE bl.base IS NOT NULL
), kept_hashes AS MATERIALIZED (
    -- The items and the groups of items each kept version names.
    SELECT bl.thread_id, {_REF_AT.format(refs="n.names", i="i")} AS hash
    FROM kept_blobs AS kb
    JOIN dg_checkpoint_blobs AS bl
      ON bl.thread_id = kb.thread_id AND bl.checkpoint_ns = kb.checkpoint_ns
     AND bl.channel = kb.channel AND bl.version = kb.version
    CROSS JOIN LATERAL (SELECT bl.refs || coalesce(bl.groups, '') AS names) AS n
    CROSS JOIN {_SPLIT_REFS.format(refs="n.names")} AS i
    UNION
    SELECT w.thread_id, {_REF_AT.format(refs="w.data", i="i")} AS hash
    FROM kept AS k
    JOIN dg_checkpoint_writes AS w
      ON w.thread_id = k.thread_id AND w.checkpoint_ns = k.checkpoint_ns
     AND w.checkpoint_id = k.checkpoint_id
    CROSS JOIN {_SPLIT_REFS.format(refs="w.data")} AS i
    WHERE w.type = '{CHUNKED_TYPE}'
), deleted_checkpoints AS (
    DELETE FROM dg_checkpoints AS c USING doomed AS d
    WHERE c.thread_id = d.thread_id AND c.checkpoint_ns = d.checkpoint_ns
      AND c.checkpoint_id = d.checkpoint_id
), orphaned AS (
    -- A kept checkpoint whose parent is gone: deleted now, or before it was put (a run that went on
    -- from a checkpoint another process had pruned).
    UPDATE dg_checkpoints AS c SET parent_checkpoint_id = NULL
    FROM kept AS k
    WHERE c.thread_id = k.thread_id AND c.checkpoint_ns = k.checkpoint_ns
      AND c.checkpoint_id = k.checkpoint_id AND k.parent_checkpoint_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM kept AS p WHERE p.thread_id = k.thread_id
                      AND p.checkpoint_ns = k.checkpoint_ns AND p.checkpoint_id = k.parent_checkpoint_id)
), deleted_writes AS (
    DELETE FROM dg_checkpoint_writes AS w USING doomed AS d
    WHERE w.thread_id = d.thread_id AND w.checkpoint_ns = d.checkpoint_ns
      AND w.checkpoint_id = d.checkpoint_id
), deleted_blobs AS (
    DELETE FROM dg_checkpoint_blobs AS bl
    WHERE bl.thread_id IN (SELECT thread_id FROM threads)
      AND NOT EXISTS (SELECT 1 FROM kept_blobs AS kb WHERE kb.thread_id = bl.thread_id
                      AND kb.checkpoint_ns = bl.checkpoint_ns AND kb.channel = bl.channel
                      AND kb.version = bl.version)
), deleted_chunks AS (
    DELETE FROM dg_checkpoint_chunks AS ch
    WHERE ch.thread_id IN (SELECT thread_id FROM threads)
      AND NOT EXISTS (SELECT 1 FROM kept_hashes AS kh WHERE kh.thread_id = ch.thread_id
                      AND kh.hash = ch.hash)
)
SELECT count(*) FROM doomed
"""

# Every checkpoint older than the ``keep`` newest of its thread and namespace: older than the
# ``keep``-th newest (a namespace with fewer has no such checkpoint, and the comparison is NULL).
_NOT_NEWEST = """c.thread_id = ANY(%(thread_ids)b::text[]) AND c.checkpoint_id < (
    SELECT h.checkpoint_id FROM dg_checkpoints AS h
    WHERE h.thread_id = c.thread_id AND h.checkpoint_ns = c.checkpoint_ns
    ORDER BY h.checkpoint_id DESC OFFSET %(newer)b LIMIT 1)"""

_DELTA_THREADS = """
SELECT DISTINCT thread_id FROM dg_checkpoints
WHERE thread_id = ANY(%(thread_ids)b::text[]) AND metadata ? %(delta_key)b
"""

_THREADS_EXIST = """
SELECT EXISTS (SELECT 1 FROM dg_checkpoints WHERE thread_id = %(source)b),
       EXISTS (SELECT 1 FROM dg_checkpoints WHERE thread_id = %(target)b)
"""

# Writes a task saved for a checkpoint of the target thread that was deleted meanwhile: no checkpoint
# reads them, but one copied under the same id would take them for its own.
_DROP_LEFTOVER_WRITES = """
DELETE FROM dg_checkpoint_writes AS w
WHERE w.thread_id = %(target)b AND NOT EXISTS (
    SELECT 1 FROM dg_checkpoints AS c
    WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns
      AND c.checkpoint_id = w.checkpoint_id)
"""

_COPY_THREAD = """
WITH copied_checkpoints AS (
    INSERT INTO dg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
                                channels, versions, type, checkpoint, metadata)
    SELECT %(target)b, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
           channels, versions, type, checkpoint, metadata
    FROM dg_checkpoints WHERE thread_id = %(source)b
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO NOTHING
), copied_blobs AS (
    INSERT INTO dg_checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, data, base, refs,
                                     groups, grouped)
    SELECT %(target)b, checkpoint_ns, channel, version, type, data, base, refs, groups, grouped
    FROM dg_checkpoint_blobs WHERE thread_id = %(source)b
    ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING
), copied_chunks AS (
    INSERT INTO dg_checkpoint_chunks (thread_id, hash, type, data)
    SELECT %(target)b, hash, type, data FROM dg_checkpoint_chunks WHERE thread_id = %(source)b
    ON CONFLICT (thread_id, hash) DO NOTHING
)
INSERT INTO dg_checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path,
                                  idx, channel, type, data)
SELECT %(target)b, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, data
FROM dg_checkpoint_writes WHERE thread_id = %(source)b
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING
"""


class ListNames:
    """What a list is read by: its items' names (``refs``, concatenated), and the names of the
    groups (``groups``) that hold its first ``grouped`` items."""

    __slots__ = ("refs", "groups", "grouped", "_items")

    def __init__(self, refs: bytes = b"", groups: tuple[bytes, ...] = (), grouped: int = 0) -> None:
        self.refs, self.groups, self.grouped = refs, groups, grouped
        self._items: list[bytes] | None = None

    @property
    def items(self) -> list[bytes]:
        """The names of the items, split once (the items looked for and decoded are the same)."""
        if self._items is None:
            self._items = split_refs(self.refs)
        return self._items

    @property
    def past_groups(self) -> list[bytes]:
        """The names of the items after those the groups hold (split again only if ``items`` was not)."""
        if self._items is not None:
            return self._items[self.grouped :]
        return split_refs(self.refs[self.grouped * HASH_BYTES :])

    def by_groups(self, held: Container[bytes]) -> bool:
        """Whether the list is read by its groups: it has some, and ``held`` lacks its first item
        (a process new to the thread; one that wrote or read the list holds its items), so the
        names of the items in the groups need not be split to be looked for."""
        return self.grouped > 0 and self.refs[:HASH_BYTES] not in held

    def lacking(self, held: Container[bytes]) -> list[bytes]:
        """What ``held`` lacks to decode the list: none when it holds every item, else the groups
        and the items past them that it does not hold."""
        if not self.by_groups(held):
            items = self.items
            if all(map(held.__contains__, items)):
                return []
            if not self.grouped:
                return [name for name in items if name not in held]
        return [name for name in chain(self.groups, self.past_groups) if name not in held]


_NOT_A_LIST = ListNames()


def _item_names(row: Sequence[Any], from_arrays: Container[int] = ()) -> list[ListNames]:
    """What each blob of a row of ``_SELECT_TUPLES`` is read by (nothing for a value that is not a
    list, or for a list ``from_arrays`` names, decoded from an array it has already), split once for
    finding the items and for decoding them."""
    return [
        _names_of(row, i) if refs and i not in from_arrays else _NOT_A_LIST
        for i, refs in enumerate(row[_BLOB_REFS] or ())
    ]


def _names_of(row: Sequence[Any], i: int) -> ListNames:
    """What the list of blob ``i`` of a row of ``_SELECT_TUPLES`` is read by."""
    groups, grouped = row[_BLOB_GROUPS][i], row[_BLOB_GROUPS + 1][i]
    return ListNames(row[_BLOB_REFS][i], tuple(split_refs(groups or b"")), grouped or 0)


def _write_names(row: Sequence[Any]) -> list[bytes]:
    """The names of the items that the pending writes of a row of ``_SELECT_TUPLES`` hold."""
    types, data = row[_WRITES + 4], row[_WRITES + 5]
    if not types or CHUNKED_TYPE not in types:
        return []
    return [name for t, d in zip(types, data, strict=True) if t == CHUNKED_TYPE for name in split_refs(d)]


def _leading_lists(rows: Rows, held: Mapping[str, Container[bytes]]) -> list[dict[int, bytes]]:
    """For each row of ``_SELECT_TUPLES``, its lists (by position among its blobs) whose items are
    the first items of the longest list of the same thread, namespace and channel in the rows
    before it, with that longer list's ``refs``: those whose items past them will be at hand, the
    longer list's items past its groups (read by a process new to the thread) or items ``held``.
    A list that leads the longer one but not past its groups is read by itself, and the lists
    after it are cut from it instead."""
    longest: dict[tuple[str, str, str], tuple[bytes, int]] = {}
    leading = []
    for row in rows:
        lists = {}
        columns = (row[9] or (), row[_BLOB_REFS] or (), row[_BLOB_GROUPS + 1] or ())
        for i, (channel, refs, grouped) in enumerate(zip(*columns, strict=True)):
            if not refs:
                continue
            key = (row[0], row[1], channel)
            longer, longer_grouped = longest.get(key, (None, 0))
            if longer is not None and len(longer) > len(refs) and longer.startswith(refs):
                past_groups = len(refs) >= longer_grouped * HASH_BYTES
                if past_groups or all(map(held[row[0]].__contains__, split_refs(longer[len(refs) :]))):
                    lists[i] = longer
                else:  # read by its own groups: the lists after it are cut from it
                    longest[key] = (refs, grouped)
            elif longer is None or len(refs) > len(longer):
                longest[key] = (refs, grouped)
        leading.append(lists)
    return leading


def _unchanged_lists(row: Sequence[Any], arrays: Mapping[tuple[str, str], ListArray]) -> dict[int, bytes]:
    """The lists of a row of ``_SELECT_TUPLES`` (by position among its blobs) that are the lists last
    read in their namespace and channel, with their items as one array."""
    if not arrays or not row[9]:
        return {}
    unchanged = {}
    for i, (channel, refs) in enumerate(zip(row[9], row[_BLOB_REFS], strict=True)):
        last = arrays.get((row[1], channel))
        if last is not None and refs and last[0] == refs:
            unchanged[i] = last[1]
    return unchanged


def _with_known_blobs(row: Sequence[Any], remembered: Remembered) -> tuple[Any, ...] | None:
    """A row of ``_SELECT_TUPLES`` whose blobs were left out, with their columns made from the lists
    remembered of its checkpoint; None when those are not the row's versions."""
    lists = remembered.lists
    if not all(c in lists and lists[c].version == v for c, v in zip(row[7], row[8], strict=True)):
        return None
    known = [lists[channel] for channel in row[7]]
    blobs = (
        list(row[7]),
        [CHUNKED_TYPE] * len(known),
        [None] * len(known),
        [stored.refs for stored in known],
        list(row[8]),
        [stored.base for stored in known],
        [stored.base_length for stored in known],
        [stored.groups for stored in known],
        [stored.grouped for stored in known],
    )
    return (*row[:9], *blobs, *row[_WRITES:])


@contextmanager
def _read_again_if_changed(apart: bool) -> Iterator[None]:
    """When rows and the items they name came from statements run ``apart``, an item missing from the
    second (deleted in between) asks for the operation to be read again in one snapshot."""
    try:
        yield
    except CorruptCheckpointError:
        if apart:
            raise SnapshotNeeded from None
        raise


def _done(statement: Statement, result: T) -> Generator[Statement, Rows, T]:
    yield statement
    return result


def _carried_params(
    carried: Sequence[TaskWrites], thread_id: str, checkpoint_ns: str, parent_id: str | None
) -> dict[str, Any]:
    """The ``_CARRIED`` parameters of the writes a put carries (none: no parameters)."""
    if not carried:
        return {}
    if any(
        (w.thread_id, w.checkpoint_ns, w.checkpoint_id) != (thread_id, checkpoint_ns, parent_id)
        for w in carried
    ):
        raise ValueError("a put carries only pending writes of its own parent checkpoint")
    rows = [(w.task_id, w.task_path, *row) for w in carried for row in w.rows]
    return {
        "w_task_ids": TextArray(row[0] for row in rows),
        "w_task_paths": TextArray(row[1] for row in rows),
        "w_idxs": IntArray(row[2] for row in rows),
        "w_channels": TextArray(row[3] for row in rows),
        "w_types": TextArray(row[4] for row in rows),
        "w_data": ByteaArray(row[5] for row in rows),
    }


class CheckpointSQL:
    """Builds the ops of every checkpointer method; ``codec`` turns values into stored bytes."""

    def __init__(self, codec: Codec, item_cache_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.codec = codec
        self._lists = ListMemory()
        self._items = item_cache(item_cache_bytes)
        self._arrays = list_array_cache(item_cache_bytes)

    # -- writing ------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        epoch: int | None = None,
        carried: Sequence[TaskWrites] = (),
    ) -> Op[RunnableConfig]:
        """``epoch``: the thread's epoch when a lease of this process holds the thread (fenced).
        ``carried``: pending writes of the parent checkpoint, stored in the same statement."""
        thread_id, checkpoint_ns, parent_id = config_address(config)
        key = (thread_id, checkpoint_ns)
        values = checkpoint["channel_values"]
        channel_versions = checkpoint["channel_versions"]
        parent = self._lists.of(key, parent_id)
        # Small values are kept in the checkpoint's body, and so are versions without a value: new
        # ones, and those the parent kept there (a delta channel that is not new and has no value
        # here may have one in the blob of its version).
        in_body = dict.fromkeys(
            c
            for c, version in channel_versions.items()
            if (
                inlined(values[c])
                if c in values
                else c in new_versions or parent.empty.get(c) == str(version)
            )
        )
        inline = {c: values[c] for c in in_body if c in values}
        empty = {c: str(channel_versions[c]) for c in in_body if c not in values}
        in_blobs = [c for c in new_versions if c not in in_body]
        stored, chunks = self.codec.encode_channel_items(values, in_blobs, thread_id, checkpoint_ns)
        parent_lists = parent.lists
        # The lists of the new checkpoint, as the next put will find them.
        lists = {
            c: v
            for c, v in parent_lists.items()
            if c in channel_versions and c not in stored and c not in in_body
        }
        bases: list[str | None] = []
        refs: list[bytes | None] = []
        groups: list[bytes | None] = []  # a full version's groups (a tail reads its base's)
        grouped: list[int] = []
        new_items: dict[bytes, tuple[str, bytes]] = {}
        new_groups: dict[bytes, tuple[str, bytes]] = {}
        for channel, value in stored.items():
            if not value.refs:
                bases.append(None)
                refs.append(None)
                groups.append(None)
                grouped.append(0)
                continue
            version = str(new_versions[channel])
            all_refs = b"".join(value.refs)
            stored_list, known = store_list(version, all_refs, parent_lists.get(channel))
            if grouping := to_group(stored_list, known):
                group = self.codec.group([chunks[ref] for ref in value.refs[grouping.start :]], thread_id)
                if group is not None:
                    new_groups[group[0]] = group[1:]
                    stored_list = replace(
                        stored_list, groups=stored_list.groups + group[0], grouped=len(value.refs)
                    )
            lists[channel] = stored_list
            bases.append(stored_list.base)
            refs.append(stored_list.stored_refs)
            in_full = stored_list.base is None
            groups.append(stored_list.groups if in_full and stored_list.groups else None)
            grouped.append(stored_list.grouped if in_full else 0)
            for ref in value.refs[known // HASH_BYTES :]:
                new_items[ref] = chunks[ref]
        for writes in carried:
            new_items.update(writes.items)
        # The id and (when all are strings) the versions of the channels in blobs are columns.
        body = {k: v for k, v in checkpoint.items() if k != "id"}
        body["channel_values"] = inline
        if all(isinstance(v, str) for v in channel_versions.values()):
            del body["channel_versions"]
            body[INLINE_VERSIONS] = {c: channel_versions[c] for c in in_body}
        body_type, body_data = self.codec.dumps(body, compress_from=BODY_COMPRESS_ABOVE)
        params = {
            "thread_id": thread_id,
            "epoch": epoch,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint["id"],
            "parent_checkpoint_id": parent_id,
            "channels": TextArray(c for c in channel_versions if c not in in_body),
            "versions": TextArray(str(v) for c, v in channel_versions.items() if c not in in_body),
            "type": body_type,
            "checkpoint": body_data,
            "metadata": Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
            "blob_channels": TextArray(stored),
            "blob_versions": TextArray(str(new_versions[channel]) for channel in stored),
            "blob_types": TextArray(v.type for v in stored.values()),
            "blob_data": ByteaArray(v.data for v in stored.values()),
            **_carried_params(carried, thread_id, checkpoint_ns, parent_id),
        }
        shortcut = {
            **params,
            "needs_parent": bool(parent_lists),
            "blob_bases": TextArray(bases),
            "blob_refs": ByteaArray(refs),
            "blob_groups": ByteaArray(groups),
            "blob_grouped": IntArray(grouped),
            **self._chunk_params({**new_items, **new_groups}),
        }

        def fallback() -> tuple[dict[str, Any], dict[str, StoredList]]:
            """Every item sent and every list of ``stored`` in full, without groups (the parent's may
            be gone with it), with those lists."""
            full = {c: StoredList(lists[c].version, lists[c].refs) for c, v in stored.items() if v.refs}
            params_in_full = {
                **params,
                "needs_parent": False,
                "blob_bases": TextArray(None for _ in stored),
                "blob_refs": ByteaArray(full[c].refs if c in full else None for c in stored),
                "blob_groups": ByteaArray(None for _ in stored),
                "blob_grouped": IntArray(0 for _ in stored),
                **self._chunk_params({**chunks, **new_items}),
            }
            return params_in_full, full

        next_config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        only_lists = all(c in lists for c in channel_versions if c not in in_body)
        steps = self._put_steps(
            key,
            checkpoint["id"],
            shortcut,
            fallback,
            Remembered(lists, empty, only_lists),
            new_items,  # not the groups: this process holds the items they hold
            next_config,
        )
        return Op(steps)

    def _put_steps(
        self,
        key: ThreadKey,
        checkpoint_id: str,
        shortcut: dict[str, Any],
        fallback: Callable[[], tuple[dict[str, Any], dict[str, StoredList]]],
        remembered: Remembered,
        new_items: dict[bytes, StoredItem],
        next_config: RunnableConfig,
    ) -> Generator[Statement, Rows, RunnableConfig]:
        if "w_task_ids" in shortcut:
            statement = _PUT_CARRYING_FREE if shortcut["epoch"] is None else _PUT_CARRYING_FENCED
        else:
            statement = _PUT_FREE if shortcut["epoch"] is None else _PUT_FENCED
        rows = yield Statement(statement, shortcut)
        parent_found, fenced = rows[0]
        if fenced and not parent_found:
            # The parent is gone (another process deleted or pruned the thread): send every item
            # and store every list in full. Rare, so a second round trip is fine.
            self._lists.forget(key)
            params_in_full, lists = fallback()
            remembered = replace(remembered, lists=lists)
            ((_, fenced),) = yield Statement(statement, params_in_full)
        if not fenced:
            raise LeaseLostError(key[0], TAKEN_OVER)
        self._lists.remember(key, checkpoint_id, remembered)
        self._cache_items(key[0], new_items)
        return next_config

    def _cache_items(self, thread_id: str, items: Mapping[bytes, StoredItem]) -> None:
        """Keep the items just stored for ``thread_id`` as reads find them (opened)."""
        if not items:
            return
        cached = self._items.of(thread_id)
        new = {k: v for k, v in items.items() if k not in cached}
        types, data = [t for t, _ in new.values()], [d for _, d in new.values()]
        self._items.add(thread_id, self.codec.opened(list(new), types, data))

    @staticmethod
    def _chunk_params(chunks: Mapping[bytes, tuple[str, bytes]]) -> dict[str, Any]:
        return {
            "chunk_hashes": ByteaArray(chunks),
            "chunk_types": TextArray(c[0] for c in chunks.values()),
            "chunk_data": ByteaArray(c[1] for c in chunks.values()),
        }

    def task_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> TaskWrites:
        """``put_writes``'s arguments, checked and encoded."""
        thread_id, checkpoint_ns, checkpoint_id = config_address(config)
        if not checkpoint_id:
            raise ValueError(
                f"put_writes needs the checkpoint_id the writes belong to, got config {config!r}"
            )
        # One row per index: the first regular write and the last special write win.
        by_idx: dict[int, tuple[str, Any]] = {}
        for i, (channel, value) in enumerate(writes):
            idx = WRITES_IDX_MAP.get(channel, i)
            if idx < 0 or idx not in by_idx:
                by_idx[idx] = (channel, value)
        rows = []
        items: dict[bytes, tuple[str, bytes]] = {}
        for idx, (channel, value) in by_idx.items():
            type_, data, value_items = self.codec.encode_write(value, thread_id, (checkpoint_ns, channel))
            rows.append((idx, channel, type_, data))
            for hash_, item_type, item_data in value_items:
                items[hash_] = (item_type, item_data)
        return TaskWrites(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, rows, items)

    def put_writes(self, writes: TaskWrites, epoch: int | None = None) -> Op[None]:
        params = {
            "thread_id": writes.thread_id,
            "epoch": epoch,
            "checkpoint_ns": writes.checkpoint_ns,
            "checkpoint_id": writes.checkpoint_id,
            "task_id": writes.task_id,
            "task_path": writes.task_path,
            "idxs": IntArray(row[0] for row in writes.rows),
            "channels": TextArray(row[1] for row in writes.rows),
            "types": TextArray(row[2] for row in writes.rows),
            "data": ByteaArray(row[3] for row in writes.rows),
            **(self._chunk_params(writes.items) if writes.items else {}),
        }
        statement = _PUT_WRITES_STATEMENTS[bool(writes.items)][epoch is not None]
        return Op(self._put_writes_steps(writes, Statement(statement, params)))

    def _put_writes_steps(self, writes: TaskWrites, statement: Statement) -> Generator[Statement, Rows, None]:
        ((fenced,),) = yield statement
        if not fenced:
            raise LeaseLostError(writes.thread_id, TAKEN_OVER)
        self._cache_items(writes.thread_id, writes.items)

    # -- reading ------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        thread_id, checkpoint_ns, checkpoint_id = config_address(config)
        params = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        if checkpoint_id:
            params["checkpoint_id"] = checkpoint_id
        # When the thread's items are (mostly) cached, the row comes without them, the missing ones after.
        with_items = not self._items.holds(thread_id)
        if not with_items:
            # A checkpoint this process put or read last comes without the blobs it remembers of it.
            params["known_id"] = self._lists.known((thread_id, checkpoint_ns)) or ""
        sql = _GET_TUPLE[bool(checkpoint_id), with_items]
        return _read_again_in_snapshot(partial(self._get_tuple_steps, Statement(sql, params), with_items))

    def _get_tuple_steps(
        self, statement: Statement, with_items: bool, *, in_snapshot: bool
    ) -> Generator[Statement, Rows, CheckpointTuple | None]:
        """The checkpoint's row, and when it came without items this process lacks, those items by a
        second statement (read again in one snapshot if an item was deleted in between, as a page
        of ``list()`` is)."""
        fetched_apart = False
        rows = yield statement
        if not rows:
            return None
        row = _unpacked(rows[0])
        if row[2] == statement.params.get("known_id") and row[7]:  # its blobs were left out
            known = _with_known_blobs(row, self._lists.of((row[0], row[1]), row[2]))
            if known is None:  # they are not what is remembered (the checkpoint was put again since)
                rows = yield Statement(statement.sql, {**statement.params, "known_id": ""})
                if not rows:
                    return None
                known = _unpacked(rows[0])
            row = known
        if row[9] is None and row[_WRITES] is None:
            # Nothing stored apart and no pending writes: no list, so no item to find (as below).
            if with_items:
                self._items.know(row[0])
            found = self._decode(row, {}, [])
            self._remember(row, found)
            return found
        arrays = self._arrays.of(row[0])
        unchanged = _unchanged_lists(row, arrays)
        names = _item_names(row, unchanged)
        hashes, types, data = row[_CHUNKS:] or (None, None, None)
        chunks: Mapping[bytes, StoredItem]
        if hashes is not None:
            chunks = self.codec.opened(hashes, types, data)
            self._items.add(row[0], chunks)
        else:  # left out by the statement (held), or the checkpoint holds no list
            chunks = self._items.of(row[0])
            write_names = _write_names(row)
            if any(n.lacking(chunks) for n in names) or not all(map(chunks.__contains__, write_names)):
                chunks = (yield from self._chunks_of([row], [names]))[row[0]]
                fetched_apart = True
            if with_items and not any(n.refs for n in names) and not write_names:
                # No list: the thread's next reads need not look for items (they fetch any
                # they lack, as after another process added some).
                self._items.know(row[0])
        read: dict[tuple[str, str], ListArray] = {}
        with _read_again_if_changed(fetched_apart and not in_snapshot):
            found = self._decode(row, chunks, names, unchanged, read)
        self._arrays.add(row[0], read)
        self._remember(row, found)
        return found

    def _remember(self, row: Sequence[Any], found: CheckpointTuple) -> None:
        """Remembers what the puts of the children of the checkpoint read (``row``, decoded as
        ``found``) need: its lists and its channels without a value. A graph run reads its thread's
        latest checkpoint first, then puts them. Nothing to do when this process put or read that
        checkpoint last."""
        key = (row[0], row[1])
        if not self._lists.holds(key, row[2]):
            lists = self._stored_lists(row)
            only_lists = len(lists) == len(row[9] or ())
            self._lists.remember(key, row[2], Remembered(lists, _empty_in_body(row, found), only_lists))

    def list_checkpoints(
        self,
        config: RunnableConfig | None,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        page_size: int,
        after: Cursor | None = None,
    ) -> Op[list[CheckpointTuple]]:
        """One keyset page of ``list()``: up to ``page_size`` rows listed after ``after``."""
        wheres: list[str] = []
        params: dict[str, Any] = {"limit": page_size}
        if config is not None:
            params["thread_id"], _, checkpoint_id = config_address(config)
            wheres.append("thread_id = %(thread_id)b")
            # Without a namespace in the config, every namespace of the thread is listed.
            if config["configurable"].get("checkpoint_ns") is not None:
                wheres.append("checkpoint_ns = %(checkpoint_ns)b")
                params["checkpoint_ns"] = config["configurable"]["checkpoint_ns"]
            if checkpoint_id:
                wheres.append("checkpoint_id = %(checkpoint_id)b")
                params["checkpoint_id"] = checkpoint_id
        if filter:
            wheres.append("metadata @> %(filter)b")
            params["filter"] = Jsonb(dict(filter))
        if before is not None and (before_id := get_checkpoint_id(before)):
            wheres.append("checkpoint_id < %(before)b")
            params["before"] = before_id
        if after is not None:
            # The first test is what the index answers; the second orders rows that share an id.
            wheres.append("checkpoint_id <= %(after_id)b")
            wheres.append(
                "(checkpoint_id, thread_id, checkpoint_ns) < (%(after_id)b, %(after_thread)b, %(after_ns)b)"
            )
            params["after_id"], params["after_thread"], params["after_ns"] = after
        page = "SELECT * FROM dg_checkpoints"
        if wheres:
            page += " WHERE " + " AND ".join(wheres)
        page += " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT %(limit)b"
        sql = _SELECT_TUPLES.format(
            page=page, chunk_columns="", chunk_join="", blobs_unless="", order=_LIST_ORDER
        )
        return _read_again_in_snapshot(partial(self._list_steps, Statement(sql, params)))

    def _list_steps(
        self, statement: Statement, *, in_snapshot: bool
    ) -> Generator[Statement, Rows, list[CheckpointTuple]]:
        """A page: its rows, then the items they use that this process lacks. The two statements run
        apart (a transaction would cost three round trips more); stored items never change, so only
        an item deleted in between can tell them apart, and the page is then read again in one
        snapshot, where a missing item is an error."""
        rows = [_unpacked(row) for row in (yield statement)]
        # A list that grew by appends is listed newest first: an older version's items lead a newer
        # one's, and are cut from its decoded array instead of being named, looked up and joined.
        leading = _leading_lists(rows, {row[0]: self._items.of(row[0]) for row in rows})
        names = [_item_names(row, lists) for row, lists in zip(rows, leading, strict=True)]
        chunks_by_thread = yield from self._chunks_of(rows, names)
        arrays: dict[bytes, bytes] = {}  # the items array of each list decoded, by its refs
        found = []
        for row, row_names, lists in zip(rows, names, leading, strict=True):
            chunks = chunks_by_thread[row[0]]
            cut = {}
            for i, longer in lists.items():
                refs = row[_BLOB_REFS][i]
                array = self._cut_array(len(refs), longer, arrays.get(longer), chunks)
                if array is not None:
                    cut[i] = array
                    continue
                # The longer list was not decoded as one array: this one is decoded by itself.
                row_names[i] = _names_of(row, i)
                if row_names[i].lacking(chunks):
                    fetched = yield from self._chunks_of([row], [[row_names[i]]])
                    chunks = {**chunks, **fetched[row[0]]}
            read: dict[tuple[str, str], ListArray] = {}
            with _read_again_if_changed(not in_snapshot):
                found.append(self._decode(row, chunks, row_names, cut, read))
            arrays.update(read.values())
        return found

    def _cut_array(
        self, length: int, longer: bytes, array: bytes | None, chunks: Mapping[bytes, StoredItem]
    ) -> bytes | None:
        """The items array of the list named by the first ``length`` bytes of ``longer`` (a longer
        list's refs), cut from ``array``, the longer list's; None when it has none."""
        if array is None:
            return None
        after = []
        for name in split_refs(longer[length:]):
            item = chunks.get(name)
            if item is None:
                return None
            after.append(item)
        return self.codec.leading_array(array, length // HASH_BYTES, after)

    def _chunks_of(
        self, rows: Rows, names: Sequence[list[ListNames]]
    ) -> Generator[Statement, Rows, Mapping[str, Mapping[bytes, StoredItem]]]:
        """The list items of checkpoint ``rows`` (whose lists name ``names``, ``_item_names``) by
        thread: the cached ones, and the others fetched in one statement, each once (versions of
        one list share most items)."""
        cached = {row[0]: self._items.of(row[0]) for row in rows}
        lacking: dict[str, set[bytes]] = {}
        for row, row_names in zip(rows, names, strict=True):
            in_cache, thread_lacks = cached[row[0]], lacking.setdefault(row[0], set())
            for list_names in row_names:
                thread_lacks.update(list_names.lacking(in_cache))
            thread_lacks.update(name for name in _write_names(row) if name not in in_cache)
        missing = {thread_id: b"".join(names) for thread_id, names in lacking.items() if names}
        if not missing:
            return cached
        found = yield Statement(
            _SELECT_CHUNKS, {"thread_ids": TextArray(missing), "wanted": ByteaArray(missing.values())}
        )
        found_by_thread: dict[str, Mapping[bytes, StoredItem]] = dict(cached)
        for thread_id, *packed in found:
            hashes, types, data = _chunk_columns(*packed)
            if hashes is None:  # none of them is stored (any longer)
                continue
            opened = self.codec.opened(hashes, types, data)
            self._items.add(thread_id, opened)
            in_cache = cached[thread_id]
            found_by_thread[thread_id] = ChainMap(opened, in_cache) if in_cache else opened
        return found_by_thread

    # -- deleting and copying -----------------------------------------------------------------

    def delete_threads(self, thread_ids: Sequence[str]) -> Op[None]:
        ids = check_prune_args(thread_ids, "delete")
        self._items.forget(ids)
        self._arrays.forget(ids)
        self.codec.forget(ids)
        return Op(_done(Statement(_DELETE_THREADS, {"thread_ids": ids}), None))

    def delete_for_runs(self, run_ids: Sequence[str]) -> Op[int]:
        ids = check_run_ids(run_ids)
        # One containment test per run id, so each is answered by the GIN index on metadata.
        doomed = " OR ".join(f"c.metadata @> %(run_{i})b" for i in range(len(ids))) or "false"
        params = {f"run_{i}": Jsonb({"run_id": run_id}) for i, run_id in enumerate(ids)}
        return Op(self._count_steps(Statement(_DELETE_CHECKPOINTS.format(doomed=f"({doomed})"), params)))

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Op[int | None]:
        ids = check_prune_args(thread_ids, strategy)
        if strategy == "delete":
            return Op(_done(Statement(_DELETE_THREADS, {"thread_ids": ids}), None))
        return self.prune_keep(ids, 1)

    def prune_keep(self, thread_ids: Sequence[str], keep: int) -> Op[int | None]:
        """Delete all but the ``keep`` newest checkpoints of each namespace; returns how many went."""
        ids = check_prune_keep_args(thread_ids, keep)
        return Op(self._keep_newest_steps(ids, keep))

    def _keep_newest_steps(self, thread_ids: list[str], keep: int) -> Generator[Statement, Rows, int | None]:
        delta = yield Statement(_DELTA_THREADS, {"thread_ids": thread_ids, "delta_key": DELTA_METADATA_KEY})
        if delta:
            raise delta_refusal((r[0] for r in delta), keep)
        count = yield from self._count_steps(
            Statement(
                _DELETE_CHECKPOINTS.format(doomed=_NOT_NEWEST), {"thread_ids": thread_ids, "newer": keep - 1}
            )
        )
        return count

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> Op[None]:
        return Op(self._copy_steps(str(source_thread_id), str(target_thread_id)))

    @staticmethod
    def _copy_steps(source: str, target: str) -> Generator[Statement, Rows, None]:
        params = {"source": source, "target": target}
        rows = yield Statement(_THREADS_EXIST, params)
        check_copy(source, target, source_exists=rows[0][0], target_exists=rows[0][1])
        yield Statement(_DROP_LEFTOVER_WRITES, params)
        yield Statement(_COPY_THREAD, params)

    @staticmethod
    def _count_steps(statement: Statement) -> Generator[Statement, Rows, int]:
        rows = yield statement
        return int(rows[0][0]) if rows else 0

    # -- decoding -----------------------------------------------------------------------------

    @staticmethod
    def _stored_lists(row: Sequence[Any]) -> dict[str, StoredList]:
        """The stored form of each list in a row of ``_SELECT_TUPLES``."""
        columns = (row[9], *row[_BLOB_REFS:_WRITES])
        return {
            channel: StoredList(version, bytes(list_refs), base, base_length, bytes(groups or b""), grouped)
            for channel, list_refs, version, base, base_length, groups, grouped in zip(
                *(column or () for column in columns), strict=True
            )
            if list_refs
        }

    def _decode(
        self,
        row: Sequence[Any],
        chunks: Mapping[bytes, tuple[str, bytes]],
        names: list[ListNames],
        unchanged: Mapping[int, bytes] | None = None,
        read: dict[tuple[str, str], ListArray] | None = None,
    ) -> CheckpointTuple:
        """The checkpoint tuple of a row of ``_SELECT_TUPLES``; ``names``: its ``_item_names``. The
        lists in ``unchanged`` are decoded from their arrays; the others' arrays are put in ``read``."""
        thread_id, checkpoint_ns, checkpoint_id, parent_id, body_type, body, metadata = row[:7]
        channels, versions = row[7], row[8]
        loads = self.codec.loads
        checkpoint = loads(body_type, body, thread_id=thread_id, checkpoint_id=checkpoint_id)
        if not isinstance(checkpoint, dict):
            raise CorruptCheckpointError(thread_id, checkpoint_id, "the checkpoint is not a mapping")
        values: dict[str, Any] = checkpoint.get("channel_values") or {}
        if row[9]:  # the values stored apart
            for i, (channel, type_, data, refs, list_names) in enumerate(
                zip(row[9], row[10], row[11], row[_BLOB_REFS], names, strict=True)
            ):
                if type_ == EMPTY_TYPE:
                    continue
                if type_ != CHUNKED_TYPE:
                    values[channel] = loads(type_, data, thread_id=thread_id, checkpoint_id=checkpoint_id)
                elif unchanged and i in unchanged:
                    values[channel] = self.codec.loads_array(unchanged[i])
                elif refs:
                    where = {"thread_id": thread_id, "checkpoint_id": checkpoint_id}
                    if list_names.by_groups(chunks):
                        values[channel], array = self.codec.decode_grouped(
                            list_names.groups, list_names.grouped, list_names.past_groups, chunks, **where
                        )
                    else:
                        values[channel], array = self.codec.decode_items(
                            list_names.items,
                            chunks,
                            groups=list_names.groups,
                            grouped=list_names.grouped,
                            **where,
                        )
                    if read is not None and array is not None:
                        read[checkpoint_ns, channel] = (refs, array)
                else:
                    raise CorruptCheckpointError(
                        thread_id, checkpoint_id, f"the item list of channel {channel!r} is missing"
                    )
        checkpoint["id"] = checkpoint_id
        # Small values are in the body with their versions (``inlined``); the others in blobs.
        inline_versions = checkpoint.pop(INLINE_VERSIONS, None)
        if "channel_versions" not in checkpoint:
            checkpoint["channel_versions"] = dict(zip(channels, versions, strict=True))
            if inline_versions:
                checkpoint["channel_versions"].update(inline_versions)
        checkpoint["channel_values"] = values
        pending: list[PendingWrite] = []
        if row[_WRITES]:
            writes = sorted(
                zip(*row[_WRITES : _WRITES + 6], strict=True), key=lambda w: writes_sort_key(w[1], w[0], w[2])
            )
            pending = [
                (task_id, channel, self._write_value(type_, data, chunks, thread_id, checkpoint_id))
                for task_id, _, _, channel, type_, data in writes
            ]
        address = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
        return CheckpointTuple(
            config={"configurable": {**address, "checkpoint_id": checkpoint_id}},
            checkpoint=checkpoint,  # type: ignore[arg-type]
            metadata=metadata,
            parent_config={"configurable": {**address, "checkpoint_id": parent_id}} if parent_id else None,
            pending_writes=pending,
        )

    def _write_value(
        self, type_: str, data: bytes, chunks: Mapping[bytes, StoredItem], thread_id: str, checkpoint_id: str
    ) -> Any:
        """The value of a pending write, as stored in a row of ``dg_checkpoint_writes``."""
        if type_ != CHUNKED_TYPE:
            return self.codec.loads(type_, data, thread_id=thread_id, checkpoint_id=checkpoint_id)
        names = split_refs(data)
        return self.codec.decode_items(names, chunks, thread_id=thread_id, checkpoint_id=checkpoint_id)[0]


def _empty_in_body(row: Sequence[Any], found: CheckpointTuple) -> dict[str, str]:
    """The channels of a row of ``_SELECT_TUPLES`` that have no value and whose versions are in its
    body (not named in its blob arrays), by version."""
    in_blobs = set(row[7] or ())
    values = found.checkpoint["channel_values"]
    return {
        c: str(v)
        for c, v in found.checkpoint["channel_versions"].items()
        if c not in values and c not in in_blobs
    }
