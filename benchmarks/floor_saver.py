"""A yardstick for the benchmarks, not a checkpointer: what committing each checkpoint costs at least.

``CommitOnlySaver`` keeps nothing to resume from. Its ``put`` commits one tiny row (thread and
checkpoint id) to Postgres and returns; ``put_writes`` does nothing and ``get_tuple`` finds
nothing. A graph run with it pays LangGraph's own per-checkpoint work plus one committed round trip
per checkpoint: the least any saver that makes each checkpoint durable in that Postgres can cost.
The benchmarks print it beside the real savers so that a target can be read against it.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from psycopg_pool import AsyncConnectionPool

_CREATE = "CREATE TABLE IF NOT EXISTS floor_commits (thread_id text NOT NULL, checkpoint_id text NOT NULL)"
_INSERT = "INSERT INTO floor_commits (thread_id, checkpoint_id) VALUES (%s, %s)"
COUNT_SQL = "SELECT count(*) FROM floor_commits"


def _next_config(config: RunnableConfig, checkpoint: Checkpoint) -> RunnableConfig:
    return {"configurable": {**config["configurable"], "checkpoint_id": checkpoint["id"]}}


class CommitOnlySaver(BaseCheckpointSaver[str]):
    """One committed row per checkpoint and nothing else (see the module docstring).

    Sync calls share one connection, as LangGraph's ``PostgresSaver`` does; async calls take a
    connection of ``apool`` each, with no lock, as durable-graph's checkpointer does.
    """

    def __init__(self, url: str, apool: AsyncConnectionPool | None = None) -> None:
        super().__init__()
        self.conn = psycopg.connect(url, autocommit=True, prepare_threshold=0)
        self.conn.execute(_CREATE)
        self.lock = threading.Lock()
        self.apool = apool

    def close(self) -> None:
        self.conn.close()

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self.lock:
            self.conn.execute(_INSERT, (config["configurable"]["thread_id"], checkpoint["id"]))
        return _next_config(config, checkpoint)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self.apool is None:
            raise RuntimeError("CommitOnlySaver needs an async pool for async graphs")
        async with self.apool.connection() as conn:
            await conn.execute(_INSERT, (config["configurable"]["thread_id"], checkpoint["id"]))
        return _next_config(config, checkpoint)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        return None

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        return None

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return None

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return None

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        return iter(())

    async def alist(self, config: RunnableConfig | None, **kwargs: Any) -> AsyncIterator[CheckpointTuple]:
        for item in ():
            yield item
