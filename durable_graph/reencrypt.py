"""Rewrite stored threads under the newest encryption key (``durable-graph reencrypt``).

Every stored blob of a thread (checkpoint bodies, channel values, list items, pending writes, durable
tool results) that was written under an older key, or without encryption, is encrypted with the
newest key, one thread per transaction. A run that is killed halfway loses nothing: the thread it was
on is rolled back, the threads before it are done, and running it again skips blobs already under
the newest key. List items keep their names (the keyed hashes they were stored under); items written
after a rotation are named under the new key, so an item stored before and after costs one more copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from durable_graph.checkpointers.codec import CHUNKED_TYPE, ENCRYPTED_SUFFIX
from durable_graph.encryption import KEY_ENV, Keys
from durable_graph.errors import EncryptionKeyError


@dataclass(frozen=True)
class _Blobs:
    """Where a table keeps encrypted blobs: its key columns, type column and data column."""

    table: str
    keys: tuple[str, ...]
    type: str
    data: str


_BLOBS = (
    _Blobs("dg_checkpoints", ("thread_id", "checkpoint_ns", "checkpoint_id"), "type", "checkpoint"),
    _Blobs("dg_checkpoint_blobs", ("thread_id", "checkpoint_ns", "channel", "version"), "type", "data"),
    _Blobs("dg_checkpoint_chunks", ("thread_id", "hash"), "type", "data"),
    _Blobs(
        "dg_checkpoint_writes",
        ("thread_id", "checkpoint_ns", "checkpoint_id", "task_id", "idx"),
        "type",
        "data",
    ),
    _Blobs(
        "durable_graph_tool_results",
        ("thread_id", "checkpoint_ns", "task_id", "call_id"),
        "result_type",
        "result",
    ),
)


@dataclass
class Reencrypted:
    """What ``reencrypt`` did: threads looked at, and blobs rewritten."""

    threads: int = 0
    blobs: int = 0


def reencrypt(
    url: str | None = None,
    thread_ids: list[str] | None = None,
    *,
    keys: Keys | None = None,
    on_thread: Callable[[str, int], None] | None = None,
) -> Reencrypted:
    """Rewrite ``thread_ids`` (every thread when None) of the database at ``url`` under the newest of
    ``keys`` (default: those of ``$LANGGRAPH_AES_KEY``); ``on_thread(thread_id, blobs)`` after each."""
    from durable_graph.checkpointers import open_checkpointer

    keys = keys or Keys.from_env()
    if keys is None:
        raise EncryptionKeyError(f"nothing to encrypt with: set {KEY_ENV} to the newest key")
    done = Reencrypted()
    with open_checkpointer(url, keys=keys) as saver:
        transaction, mark = _transactions(saver)
        with transaction() as conn:
            tables = [b for b in _BLOBS if _exists(conn, b.table, mark)]
            if thread_ids is None:
                found = conn.execute("SELECT DISTINCT thread_id FROM dg_checkpoints ORDER BY thread_id")
                thread_ids = [row[0] for row in found.fetchall()]
        for thread_id in thread_ids:
            with transaction() as conn:
                rewritten = sum(_reencrypt_table(conn, blobs, thread_id, keys, mark) for blobs in tables)
            done.threads += 1
            done.blobs += rewritten
            if on_thread is not None:
                on_thread(thread_id, rewritten)
    return done


def _reencrypt_table(conn: Any, blobs: _Blobs, thread_id: str, keys: Keys, mark: str) -> int:
    columns = ", ".join(blobs.keys)
    rows = conn.execute(
        f"SELECT {columns}, {blobs.type}, {blobs.data} FROM {blobs.table} WHERE thread_id = {mark}",
        (thread_id,),
    ).fetchall()
    where = " AND ".join(f"{column} = {mark}" for column in blobs.keys)
    update = f"UPDATE {blobs.table} SET {blobs.type} = {mark}, {blobs.data} = {mark} WHERE {where}"
    rewritten = 0
    for *key, type_, data in rows:
        if type_ is None or data is None or type_ == CHUNKED_TYPE:  # names of items, which have rows
            continue
        data = bytes(data)
        if type_.endswith(ENCRYPTED_SUFFIX):
            if keys.is_current(data):
                continue
            new_type, new_data = type_, keys.encrypt(_decrypt(keys, data, blobs, thread_id))
        else:
            new_type, new_data = type_ + ENCRYPTED_SUFFIX, keys.encrypt(data)
        conn.execute(update, (new_type, new_data, *key))
        rewritten += 1
    return rewritten


def _decrypt(keys: Keys, data: bytes, blobs: _Blobs, thread_id: str) -> bytes:
    try:
        return keys.decrypt(data)
    except EncryptionKeyError as exc:
        raise EncryptionKeyError(f"thread {thread_id!r}, table {blobs.table}: {exc}") from exc


def _exists(conn: Any, table: str, mark: str) -> bool:
    if mark == "?":
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        query = "SELECT 1 WHERE to_regclass(%s) IS NOT NULL"
    return conn.execute(query, (table,)).fetchone() is not None


def _transactions(saver: Any) -> tuple[Callable[[], AbstractContextManager[Any]], str]:
    """A factory of transactions on the saver's database, and its parameter mark."""
    from durable_graph.checkpointers.sqlite import SqliteCheckpointer

    if isinstance(saver, SqliteCheckpointer):
        return lambda: saver.transaction(), "?"
    if not hasattr(saver, "pool"):
        raise ValueError("reencrypt needs a Postgres or SQLite database; memory:// stores nothing at rest")

    @contextmanager
    def transaction() -> Iterator[Any]:
        with saver.pool.connection() as conn, conn.transaction():
            yield conn

    return transaction, "%s"
