"""``PostgresCheckpointer``: LangGraph checkpoints in Postgres, for sync and async graphs alike.

The SQL, its parameters and the decoding of rows live in ``sql`` and are shared by both
paths; ``pool`` owns the connections. This class only ties them to LangGraph's
``BaseCheckpointSaver`` interface. See ``docs/postgres.md`` for the storage layout.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import partial
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from durable_graph.checkpointers.codec import Codec
from durable_graph.checkpointers.common import DELTA_METADATA_KEY, config_address, version_counter
from durable_graph.checkpointers.pages import ListPages, cursor_of
from durable_graph.checkpointers.postgres.outbox import WritesOutbox
from durable_graph.checkpointers.postgres.pool import DEFAULT_CONNECT_TIMEOUT, DEFAULT_RETRY_FOR, Pools
from durable_graph.checkpointers.postgres.sql import CheckpointSQL
from durable_graph.checkpointers.thread_cache import DEFAULT_CACHE_BYTES
from durable_graph.encryption import Keys
from durable_graph.leases.fences import Fence, database_key, fence_for
from durable_graph.lifecycle import ContextManaged

COMPRESS_ABOVE = 1024
"""Postgres compresses only values above about 2 KB, so the checkpointer compresses smaller ones
itself: a message of 1 KB of text typically halves. Smaller items save too few bytes for the
decompression every first read of them costs (about 3 µs each)."""


class PostgresCheckpointer(ContextManaged, BaseCheckpointSaver[str]):
    """A LangGraph checkpointer backed by Postgres through psycopg 3 connection pools.

    ``conninfo`` is a libpq connection string or URL. ``pool_size`` caps each pool (sync and
    async). Values and list items whose serialized form exceeds ``compress_above`` bytes are
    zlib-compressed (``None`` turns compression off). Connecting gives up after
    ``connect_timeout`` seconds with ``BackendUnavailableError``; a connection lost while open (a
    server restart) is retried with backoff for ``retry_for`` seconds before that error. ``keys``
    (``durable_graph.encryption.Keys``) encrypts everything stored; ``open_checkpointer`` passes
    those of ``$LANGGRAPH_AES_KEY``. Up to ``item_cache_bytes`` of the list items it has written or
    read are kept in memory, so reading a thread again fetches only what changed, as much again of
    the lists it last read, so an unchanged list read again is decoded in one call, and as much again
    for each of its write caches, so an unchanged item written again is not serialized, compressed
    or encrypted again (0: nothing kept; see "The item cache" in docs/postgres.md).

    Use it through ``open_checkpointer(url)``, or call ``open()``/``close()`` (or
    ``aopen()``/``aclose()``) yourself; the schema is created or migrated on open.
    """

    def __init__(
        self,
        conninfo: str,
        *,
        serde: SerializerProtocol | None = None,
        pool_size: int = 10,
        compress_above: int | None = COMPRESS_ABOVE,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        retry_for: float = DEFAULT_RETRY_FOR,
        keys: Keys | None = None,
        item_cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        super().__init__(serde=serde)
        if type(item_cache_bytes) is not int or item_cache_bytes < 0:
            raise ValueError(f"item_cache_bytes must be 0 (no cache) or more bytes, got {item_cache_bytes!r}")
        self.keys = keys
        self._item_cache_bytes = item_cache_bytes
        self._pools = Pools(
            conninfo, pool_size=pool_size, connect_timeout=connect_timeout, retry_for=retry_for
        )
        self._compress_above = compress_above
        self._sql_cache: CheckpointSQL | None = None
        self._outbox = WritesOutbox()
        self._database = database_key(conninfo)

    def _fence(self, config: RunnableConfig) -> Fence | None:
        """The fence of the thread's lease if this process holds it: its writes are then fenced."""
        return fence_for(self._database, str(config["configurable"]["thread_id"]))

    @property
    def conninfo(self) -> str:
        """The connection string or URL this checkpointer connects with."""
        return self._pools.conninfo

    @property
    def _sql(self) -> CheckpointSQL:
        # Rebuilt when ``serde`` changes, as ``with_allowlist`` does on a copy of the checkpointer.
        if self._sql_cache is None or self._sql_cache.codec.serde is not self.serde:
            codec = Codec(
                self.serde,
                compress_above=self._compress_above,
                keys=self.keys,
                memo_bytes=self._item_cache_bytes,
            )
            self._sql_cache = CheckpointSQL(codec, self._item_cache_bytes)
        return self._sql_cache

    # -- lifecycle ----------------------------------------------------------------------------

    def open(self) -> None:
        """Migrate the schema and open the sync pool."""
        self._pools.open()

    def close(self) -> None:
        self._pools.close()

    async def aopen(self) -> None:
        """Migrate the schema and open the async pool in the running event loop."""
        await self._pools.aopen()

    async def aclose(self) -> None:
        await self._pools.aclose()

    @property
    def pool(self) -> ConnectionPool:
        """The sync connection pool (opened if it was not)."""
        return self._pools.open()

    async def apool(self) -> AsyncConnectionPool:
        """The async connection pool of the running event loop (opened if it was not)."""
        return await self._pools.aopen()

    def pool_stats(self) -> dict[str, dict[str, int]]:
        """psycopg-pool statistics of the open pools, keyed ``"sync"`` and ``"async"``."""
        return self._pools.stats()

    # -- sync ---------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._pools.run(lambda: self._sql.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        pages, page_of = ListPages(limit), partial(self._sql.list_checkpoints, config, filter, before)
        while (size := pages.next_size()) is not None:
            page = self._pools.run(partial(page_of, size, pages.after))
            pages.advance([cursor_of(listed) for listed in page], size)
            yield from page

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        fence = self._fence(config)
        epoch = fence.epoch if fence else None
        return self._pools.run(
            lambda: self._sql.put(config, checkpoint, metadata, new_versions, epoch), fence
        )

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        fence = self._fence(config)
        epoch = fence.epoch if fence else None
        task_writes = self._sql.task_writes(config, writes, task_id, task_path)
        self._pools.run(lambda: self._sql.put_writes(task_writes, epoch), fence)

    def delete_thread(self, thread_id: str) -> None:
        self._pools.run(lambda: self._sql.delete_threads([thread_id]))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._pools.run(lambda: self._sql.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._pools.run(lambda: self._sql.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune threads: ``"keep_latest"`` keeps the newest checkpoint of each namespace (with its
        writes), ``"delete"`` removes everything. Blobs and list items no kept checkpoint uses go too.
        """
        self._pools.run(lambda: self._sql.prune(thread_ids, strategy))

    def prune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        """Keep the ``keep`` newest checkpoints of each namespace (with their writes) and delete the
        older ones, and the blobs and list items no kept checkpoint uses. ``keep=1`` is
        ``prune(strategy="keep_latest")``. Refuses threads that use a ``DeltaChannel``."""
        self._pools.run(lambda: self._sql.prune_keep(thread_ids, keep))

    # -- async --------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._pools.arun(lambda: self._sql.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        pages, page_of = ListPages(limit), partial(self._sql.list_checkpoints, config, filter, before)
        while (size := pages.next_size()) is not None:
            page = await self._pools.arun(partial(page_of, size, pages.after))
            pages.advance([cursor_of(listed) for listed in page], size)
            for listed in page:
                yield listed

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        fence = self._fence(config)
        epoch = fence.epoch if fence else None
        thread_id, checkpoint_ns, parent_id = config_address(config)
        if DELTA_METADATA_KEY in metadata:
            self._outbox.note_delta(thread_id, checkpoint_ns)
        offers = self._outbox.take(thread_id, checkpoint_ns, parent_id, epoch)
        carried = [offer.writes for offer in offers]
        putting = self._outbox.putting(thread_id, checkpoint_ns, checkpoint["id"], epoch)
        try:
            stored = await self._pools.arun(
                lambda: self._sql.put(config, checkpoint, metadata, new_versions, epoch, carried), fence
            )
        except BaseException:
            self._outbox.settle(offers, stored=False)
            raise
        finally:
            self._outbox.put_done(putting)
        self._outbox.settle(offers, stored=True)
        return stored

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        fence = self._fence(config)
        epoch = fence.epoch if fence else None
        task_writes = self._sql.task_writes(config, writes, task_id, task_path)
        # Usually the put of the next checkpoint starts in the same turn and stores them with it.
        if await self._outbox.carried(task_writes, epoch):
            return
        await self._pools.arun(lambda: self._sql.put_writes(task_writes, epoch), fence)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._pools.arun(lambda: self._sql.delete_threads([thread_id]))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._pools.arun(lambda: self._sql.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._pools.arun(lambda: self._sql.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._pools.arun(lambda: self._sql.prune(thread_ids, strategy))

    async def aprune_keep(self, thread_ids: Sequence[str], keep: int) -> None:
        await self._pools.arun(lambda: self._sql.prune_keep(thread_ids, keep))

    def get_next_version(self, current: str | None, channel: None) -> str:
        """``<counter>.<random>``, e.g. ``0000000007.9f86d081``: increasing, and different for two
        forks of a thread that reach the same counter, so a version always names one stored value.
        Shorter than LangGraph's own (49 characters), as every checkpoint repeats its versions."""
        return f"{version_counter(current) + 1:010}.{random.getrandbits(32):08x}"
