"""The ``memory://`` store: LangGraph's ``InMemoryStore``, openable like the Postgres one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.store.memory import InMemoryStore

from durable_graph.memory.config import resolve_index
from durable_graph.memory.scoped import ScopedStore


class MemoryStore(InMemoryStore):
    """``InMemoryStore`` with the same ``embed``/``dims``/``fields`` options, ``scoped`` handles and
    no-op ``open``/``close``/``aopen``/``aclose``. It keeps nothing after the process ends and has no TTL."""

    def __init__(
        self,
        *,
        embed: Any = None,
        dims: int | None = None,
        fields: Sequence[str] | None = None,
        index: dict[str, Any] | None = None,
    ) -> None:
        settings = resolve_index(embed, dims, fields, index)
        super().__init__(
            index=None
            if settings is None
            else {"dims": settings.dims, "embed": settings.embeddings, "fields": list(settings.fields)}
        )

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def aopen(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def scoped(self, prefix: tuple[str, ...]) -> ScopedStore:
        return ScopedStore(self, prefix)
