"""Turning ``embed`` / ``dims`` / ``fields`` (or a LangGraph ``index`` dict) into index settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from durable_graph.errors import StoreConfigError
from durable_graph.memory.core import IndexSettings
from durable_graph.memory.embedders import HashingEmbedder, as_embeddings, embedder_dims

DEFAULT_HASHING_DIMS = 512


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
    if isinstance(dims, bool) or not isinstance(dims, int) or not 1 <= dims <= 16000:
        raise StoreConfigError(f"dims must be an integer between 1 and 16000, got {dims!r}")
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
