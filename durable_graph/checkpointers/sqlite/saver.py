"""SQLite checkpointer: a ``BaseCheckpointSaver`` on one SQLite file (or ``:memory:``).

Storage follows the Postgres backend: a checkpoint row without its values, each channel value
stored once per version, list values as per-thread content-addressed chunks (see ``codec``), and
pending writes. The file is in WAL mode with a busy timeout, and every write is one
``BEGIN IMMEDIATE`` transaction, so several processes can share a file.

SQLite is in-process file I/O, so there is one core: the sync methods run it under a lock, and the
async methods run the same sync methods in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from durable_graph.backoff import backoff_delays
from durable_graph.checkpointers.codec import CHUNKED_TYPE, EMPTY_TYPE, Codec, StoredValue
from durable_graph.checkpointers.common import (
    DELTA_METADATA_KEY,
    check_copy,
    check_prune_args,
    check_prune_keep_args,
    check_run_ids,
    config_address,
    delta_refusal,
    next_version,
)
from durable_graph.checkpointers.pages import Cursor, ListPages
from durable_graph.checkpointers.sqlite import schema as sqlite_schema
from durable_graph.checkpointers.sqlite import sql
from durable_graph.encryption import Keys
from durable_graph.errors import BackendUnavailableError, CorruptCheckpointError
from durable_graph.lifecycle import ContextManaged

DEFAULT_BUSY_TIMEOUT = 30.0
_CHUNK_BATCH = 500


class SqliteCheckpointer(ContextManaged, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer on a SQLite file; ``path`` may be ``":memory:"``.

    Call ``open()`` (or ``await aopen()``) first, or use ``open_checkpointer("sqlite:///path")``.
    ``keys`` (``durable_graph.encryption.Keys``) encrypts everything stored; ``open_checkpointer``
    passes those of ``$LANGGRAPH_AES_KEY``.
    """

    def __init__(
        self,
        path: str,
        *,
        serde: SerializerProtocol | None = None,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        keys: Keys | None = None,
    ) -> None:
        super().__init__(serde=serde)
        self.keys = keys
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._codec = Codec(self.serde, keys=self.keys)

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Open the file, switch it to WAL mode and create or migrate the schema."""
        with self._lock:
            if self._conn is not None:
                return
            self._check_path()
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
                )
            except sqlite3.Error as exc:
                raise BackendUnavailableError(f"SQLite: cannot open {self.path!r}: {exc}") from exc
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000):d}")
                _use_wal(conn, self.busy_timeout)
                conn.execute("PRAGMA synchronous = FULL")
                sqlite_schema.migrate(conn, self.path)
            except sqlite3.DatabaseError as exc:
                conn.close()
                raise BackendUnavailableError(
                    f"SQLite: cannot use {self.path!r} as a checkpoint database: {exc}"
                ) from exc
            except BaseException:
                conn.close()
                raise
            self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def aopen(self) -> None:
        await asyncio.to_thread(self.open)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def _check_path(self) -> None:
        if self.path == ":memory:" or self.path.startswith("file:"):
            return
        path = Path(self.path)
        parent = path.parent
        if not parent.is_dir():
            raise BackendUnavailableError(
                f"SQLite: cannot open {self.path!r}: directory {str(parent)!r} does not exist"
            )
        if path.is_dir():
            raise BackendUnavailableError(f"SQLite: cannot open {self.path!r}: it is a directory")

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; writers take the file's write lock at once."""
        with self._lock:
            conn = self._conn
            if conn is None:
                raise RuntimeError(
                    f"SqliteCheckpointer({self.path!r}) is not open: "
                    "use open_checkpointer(url) or call open()"
                )
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """A write transaction on the file, for maintenance such as ``durable-graph reencrypt``."""
        return self._transaction(write=True)

    @property
    def codec(self) -> Codec:
        if self._codec.serde is not self.serde:  # ``with_allowlist`` clones swap the serde
            self._codec = Codec(self.serde, keys=self.keys)
        return self._codec

    # -- writes -------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, checkpoint_ns, parent_id = config_address(config)
        values = checkpoint["channel_values"]
        stored, chunks = self.codec.encode_channels(values, new_versions, thread_id)
        bare = {k: v for k, v in checkpoint.items() if k != "channel_values"}
        type_, data = self.codec.dumps(bare)
        meta = get_serializable_checkpoint_metadata(config, metadata)
        meta_json = json.dumps(meta, ensure_ascii=False)
        versions_json = json.dumps({ch: str(v) for ch, v in checkpoint["channel_versions"].items()})
        run_id = meta.get("run_id")
        with self._transaction(write=True) as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO dg_checkpoint_chunks (thread_id, hash, type, data) "
                "VALUES (?, ?, ?, ?)",
                [(thread_id, c.hash, c.type, c.data) for c in chunks.values()],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO dg_checkpoint_blobs "
                "(thread_id, checkpoint_ns, channel, version, type, data, refs) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (thread_id, checkpoint_ns, ch, str(new_versions[ch]), s.type, s.data, b"".join(s.refs))
                    for ch, s in stored.items()
                ],
            )
            conn.execute(
                "INSERT OR REPLACE INTO dg_checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
                "parent_checkpoint_id, run_id, type, checkpoint, metadata, channel_versions) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    thread_id,
                    checkpoint_ns,
                    checkpoint["id"],
                    parent_id,
                    None if run_id is None else str(run_id),
                    type_,
                    data,
                    meta_json,
                    versions_json,
                ),
            )
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id, checkpoint_ns, checkpoint_id = config_address(config)
        if checkpoint_id is None:
            raise ValueError(
                "put_writes needs a config with a checkpoint_id (the checkpoint the task ran from)"
            )
        # Special channels (errors, interrupts, ...) are replaced; a regular write is kept once.
        rows: dict[bool, list[tuple[Any, ...]]] = {True: [], False: []}
        for idx, (channel, value) in enumerate(writes):
            type_, data = self.codec.dumps(value)
            row = (thread_id, checkpoint_ns, checkpoint_id, task_id, WRITES_IDX_MAP.get(channel, idx))
            rows[channel in WRITES_IDX_MAP].append((*row, task_path, channel, type_, data))
        with self._transaction(write=True) as conn:
            conn.executemany(sql.INSERT_WRITE.format(conflict="REPLACE"), rows[True])
            conn.executemany(sql.INSERT_WRITE.format(conflict="IGNORE"), rows[False])

    # -- reads --------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, checkpoint_ns, checkpoint_id = config_address(config)
        query = (
            f"SELECT {sql.CHECKPOINT_COLUMNS} FROM dg_checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
        )
        params: list[Any] = [thread_id, checkpoint_ns]
        if checkpoint_id:
            query += " AND checkpoint_id = ?"
            params.append(checkpoint_id)
        query += " ORDER BY checkpoint_id DESC LIMIT 1"
        with self._transaction(write=False) as conn:
            row = conn.execute(query, params).fetchone()
            fetched = None if row is None else self._fetch(conn, row)
        return None if fetched is None else self._decode(fetched)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        pages = ListPages(limit)
        while (size := pages.next_size()) is not None:
            rows = self._list_rows(config, filter, before, size, pages.after)
            pages.advance([(checkpoint_id, thread_id, ns) for thread_id, ns, checkpoint_id, *_ in rows], size)
            for row in rows:
                tup = self._load_row(row)
                if tup is not None:
                    yield tup

    def _list_rows(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        page_size: int,
        after: Cursor | None,
    ) -> Sequence[tuple[Any, ...]]:
        """One keyset page of ``list()``'s rows: up to ``page_size`` listed after ``after``."""
        wheres: list[str] = []
        params: list[Any] = []
        if config is not None:
            thread_id, checkpoint_ns, checkpoint_id = config_address(config)
            wheres.append("thread_id = ?")
            params.append(thread_id)
            if (config.get("configurable") or {}).get("checkpoint_ns") is not None:
                wheres.append("checkpoint_ns = ?")
                params.append(checkpoint_ns)
            if checkpoint_id:
                wheres.append("checkpoint_id = ?")
                params.append(checkpoint_id)
        if filter:
            filter_wheres, filter_params = sql.filter_clause(filter)
            wheres += filter_wheres
            params += filter_params
        before_id = (before.get("configurable") or {}).get("checkpoint_id") if before else None
        if before_id:
            wheres.append("checkpoint_id < ?")
            params.append(before_id)
        if after is not None:
            wheres.append("checkpoint_id <= ? AND (checkpoint_id, thread_id, checkpoint_ns) < (?, ?, ?)")
            params += [after[0], *after]
        query = f"SELECT {sql.CHECKPOINT_COLUMNS} FROM dg_checkpoints"
        if wheres:
            query += " WHERE " + " AND ".join(wheres)
        query += " ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC LIMIT ?"
        params.append(page_size)
        with self._transaction(write=False) as conn:
            return conn.execute(query, params).fetchall()

    def _load_row(self, row: tuple[Any, ...]) -> CheckpointTuple | None:
        """The tuple of a listed row, or None if it was deleted since it was listed."""
        with self._transaction(write=False) as conn:
            still_there = conn.execute(
                sql.SELECT_EXISTS,
                row[:3],
            ).fetchone()
            fetched = None if still_there is None else self._fetch(conn, row)
        return None if fetched is None else self._decode(fetched)

    def _fetch(self, conn: sqlite3.Connection, row: tuple[Any, ...]) -> sql.Fetched:
        thread_id, checkpoint_ns, checkpoint_id, parent_id, type_, checkpoint, metadata = row
        key = (thread_id, checkpoint_ns, checkpoint_id)
        values = conn.execute(sql.SELECT_VALUES, key).fetchall()
        refs: set[bytes] = set()
        for _channel, value_type, _data, value_refs in values:
            if value_type == CHUNKED_TYPE:
                refs.update(sql.split_refs(value_refs, thread_id=thread_id, checkpoint_id=checkpoint_id))
        chunks = self._fetch_chunks(conn, thread_id, refs)
        writes = conn.execute(sql.SELECT_WRITES, key).fetchall()
        return sql.Fetched(*key, parent_id, type_, checkpoint, metadata, values, chunks, writes)

    @staticmethod
    def _fetch_chunks(
        conn: sqlite3.Connection, thread_id: str, refs: Iterable[bytes]
    ) -> dict[bytes, tuple[str, bytes]]:
        found: dict[bytes, tuple[str, bytes]] = {}
        wanted = list(refs)
        for start in range(0, len(wanted), _CHUNK_BATCH):
            batch = wanted[start : start + _CHUNK_BATCH]
            marks = ", ".join("?" * len(batch))
            for hash_, type_, data in conn.execute(
                "SELECT hash, type, data FROM dg_checkpoint_chunks "
                f"WHERE thread_id = ? AND hash IN ({marks})",
                [thread_id, *batch],
            ):
                found[bytes(hash_)] = (type_, data)
        return found

    def _decode(self, f: sql.Fetched) -> CheckpointTuple:
        codec = self.codec
        where = {"thread_id": f.thread_id, "checkpoint_id": f.checkpoint_id}
        checkpoint = codec.loads(f.type, f.checkpoint, **where)
        try:
            metadata = json.loads(f.metadata)
        except ValueError as exc:
            raise CorruptCheckpointError(f.thread_id, f.checkpoint_id, f"metadata: {exc}") from exc
        channel_values: dict[str, Any] = {}
        for channel, type_, data, refs in f.values:
            if type_ == EMPTY_TYPE:
                continue
            stored = StoredValue(type_, data, sql.split_refs(refs, **where) if type_ == CHUNKED_TYPE else ())
            channel_values[channel] = codec.decode_value(stored, f.chunks, **where)
        pending_writes = [
            (task_id, channel, codec.loads(type_, data, **where))
            for task_id, channel, type_, data in f.writes
        ]
        address = {"thread_id": f.thread_id, "checkpoint_ns": f.checkpoint_ns}
        return CheckpointTuple(
            config={"configurable": {**address, "checkpoint_id": f.checkpoint_id}},
            checkpoint=cast(Checkpoint, {**checkpoint, "channel_values": channel_values}),
            metadata=cast(CheckpointMetadata, metadata),
            parent_config=(
                {"configurable": {**address, "checkpoint_id": f.parent_id}} if f.parent_id else None
            ),
            pending_writes=pending_writes,
        )

    # -- deletes and copies -------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        with self._transaction(write=True) as conn:
            for table in sql.THREAD_TABLES:
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (str(thread_id),))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        ids = json.dumps(check_run_ids(run_ids))
        in_runs = "run_id IN (SELECT value FROM json_each(?))"
        with self._transaction(write=True) as conn:
            threads = [
                r[0]
                for r in conn.execute(
                    f"SELECT DISTINCT thread_id FROM dg_checkpoints WHERE {in_runs}", (ids,)
                )
            ]
            conn.execute(
                f"""DELETE FROM dg_checkpoint_writes WHERE EXISTS (
                    SELECT 1 FROM dg_checkpoints AS c
                    WHERE c.{in_runs} AND c.thread_id = dg_checkpoint_writes.thread_id
                    AND c.checkpoint_ns = dg_checkpoint_writes.checkpoint_ns
                    AND c.checkpoint_id = dg_checkpoint_writes.checkpoint_id)""",
                (ids,),
            )
            conn.execute(f"DELETE FROM dg_checkpoints WHERE {in_runs}", (ids,))
            for thread_id in threads:
                conn.execute(sql.DROP_DANGLING_PARENTS, (thread_id,))
                sql.collect_garbage(conn, thread_id)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        source, target = str(source_thread_id), str(target_thread_id)
        with self._transaction(write=True) as conn:
            exists = "SELECT 1 FROM dg_checkpoints WHERE thread_id = ? LIMIT 1"
            check_copy(
                source,
                target,
                source_exists=conn.execute(exists, (source,)).fetchone() is not None,
                target_exists=conn.execute(exists, (target,)).fetchone() is not None,
            )
            for table, columns in sql.COPIED_COLUMNS.items():
                # The target has no checkpoints: what it holds are writes a task saved for a
                # checkpoint deleted meanwhile, which a copied checkpoint would take for its own.
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (target,))
                conn.execute(
                    f"INSERT INTO {table} (thread_id, {columns}) SELECT ?, {columns} FROM {table} "
                    "WHERE thread_id = ?",
                    (target, source),
                )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Keep only the latest checkpoint of each namespace (``"keep_latest"``, which is
        ``prune_keep(thread_ids, 1)``) or delete the threads (``"delete"``), with their writes and
        the values and list items no kept checkpoint uses.
        """
        ids = check_prune_args(thread_ids, strategy)
        if strategy == "keep_latest":
            self.prune_keep(ids, 1)
            return
        if not ids:
            return
        with self._transaction(write=True) as conn:
            for thread_id in ids:
                for table in sql.THREAD_TABLES:
                    conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))

    def prune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        """Keep the ``keep`` newest checkpoints of each namespace and delete the older ones with
        their writes and the values and list items no kept checkpoint uses; a kept checkpoint whose
        parent goes loses its parent link.

        Refuses threads that use a ``DeltaChannel`` (their latest value is rebuilt from older
        checkpoints); nothing is pruned then.
        """
        ids = check_prune_keep_args(thread_ids, keep)
        if not ids:
            return
        with self._transaction(write=True) as conn:
            delta = conn.execute(
                "SELECT DISTINCT thread_id FROM dg_checkpoints "
                "WHERE thread_id IN (SELECT value FROM json_each(?)) "
                "AND json_type(metadata, ?) IS NOT NULL",
                (json.dumps(ids), sql.json_path(DELTA_METADATA_KEY)),
            ).fetchall()
            if delta:
                raise delta_refusal((r[0] for r in delta), keep)
            for thread_id in ids:
                for statement in sql.KEEP_NEWEST:  # the writes, then the checkpoints
                    deleted = conn.execute(statement, (thread_id, keep)).rowcount
                if deleted:  # no remaining checkpoint may name a parent that is gone
                    conn.execute(sql.DROP_DANGLING_PARENTS, (thread_id,))
                sql.collect_garbage(conn, thread_id)

    # -- async: the same core in a worker thread -----------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        listed = self.list(config, filter=filter, before=before, limit=limit)
        while (tup := await asyncio.to_thread(next, listed, None)) is not None:
            yield tup

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)

    async def aprune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        await asyncio.to_thread(self.prune_keep, thread_ids, keep)

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)


def _use_wal(conn: sqlite3.Connection, timeout: float) -> None:
    """Switch the file to WAL mode. The switch needs the file to itself and SQLite does not wait for
    it (no busy handler), so while another process opens the same new file at the same moment (and
    switches it, or creates the schema) it is retried until ``timeout``."""
    delays = backoff_delays(timeout)
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            delay = next(delays, None)
            if "locked" not in str(exc) or delay is None:
                raise
            time.sleep(delay)
