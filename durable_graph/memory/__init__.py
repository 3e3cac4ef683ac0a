"""Long-term memory for agents: a LangGraph ``BaseStore`` on Postgres + pgvector (or in memory).

    with open_store("embedded://") as store:
        graph = builder.compile(checkpointer=saver, store=store)

See ``docs/memory.md``.
"""

from __future__ import annotations

from durable_graph.memory import tuning
from durable_graph.memory.embedders import HashingEmbedder, MiniLMEmbeddings, as_embeddings
from durable_graph.memory.factory import open_store
from durable_graph.memory.inmemory import MemoryStore
from durable_graph.memory.schema import HNSWConfig
from durable_graph.memory.scoped import ScopedStore
from durable_graph.memory.store import PgVectorStore

__all__ = [
    "HNSWConfig",
    "HashingEmbedder",
    "MemoryStore",
    "MiniLMEmbeddings",
    "PgVectorStore",
    "ScopedStore",
    "as_embeddings",
    "open_store",
    "tuning",
]
