"""Store settings: ``embed`` / ``dims`` / ``fields`` (or a LangGraph ``index`` dict) made into index
settings, checked once when a store is built."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import tokenize_path

from durable_graph.errors import StoreConfigError
from durable_graph.memory.embedders import HashingEmbedder, as_embeddings, embedder_dims

DEFAULT_HASHING_DIMS = 512
MAX_DIMS = 4000


@dataclass(frozen=True)
class IndexSettings:
    """Which fields are embedded, by what, into vectors of which size."""

    embeddings: Embeddings
    dims: int
    fields: tuple[str, ...] = ("$",)
    tokenized: tuple[tuple[str, Any], ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.fields or any(not isinstance(f, str) or not f for f in self.fields):
            raise ValueError(f"index fields must be non-empty JSON paths such as 'text', got {self.fields!r}")
        paths = tuple((f, f if f == "$" else tokenize_path(f)) for f in self.fields)
        object.__setattr__(self, "tokenized", paths)

    @property
    def vectors_per_item(self) -> int:
        wildcard = any("*" in f for f in self.fields)
        return len(self.fields) * (4 if wildcard else 1)


@dataclass(frozen=True)
class Settings:
    index: IndexSettings | None = None
    hybrid: bool = False


def resolve_index(
    embed: Any = None,
    dims: int | None = None,
    fields: Sequence[str] | None = None,
    index: dict[str, Any] | None = None,
) -> IndexSettings | None:
    """The store's index settings; None when ``embed=False`` (no semantic search).

    ``embed=None`` means the offline ``HashingEmbedder`` (``dims`` defaults to 512 for it). Any other
    embedder needs ``dims`` unless it declares its own (``.dims``, as ``"minilm"`` does).
    ``index`` is LangGraph's ``{"dims", "embed", "fields"}`` form and overrides the other three.
    """
    if index is not None:
        if not isinstance(index, dict) or "embed" not in index:
            raise StoreConfigError(
                f"index must be a dict like {{'dims': 384, 'embed': ..., 'fields': [...]}}, got {index!r}"
            )
        embed, dims, fields = index["embed"], index.get("dims"), index.get("fields")
    if embed is False:
        return None
    embeddings = HashingEmbedder(dims or DEFAULT_HASHING_DIMS) if embed is None else as_embeddings(embed)
    declared = embedder_dims(embeddings)
    if dims is None:
        dims = declared
    if dims is None:
        raise StoreConfigError(
            "dims is required with this embedder: pass the size of the vectors it returns, e.g. dims=384"
        )
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= MAX_DIMS:
        raise StoreConfigError(
            f"dims must be an integer between 1 and {MAX_DIMS} (what pgvector's HNSW index takes at "
            f"half precision), got {dims!r}"
        )
    if declared is not None and declared != dims:
        raise StoreConfigError(
            f"the embedder makes {declared}-dimensional vectors, but dims={dims} was given"
        )
    if isinstance(fields, str):
        fields = [fields]
    try:
        return IndexSettings(embeddings, dims, tuple(fields or ("$",)))
    except ValueError as exc:
        raise StoreConfigError(str(exc)) from exc
