"""Shared helpers (no tests) for the memory store tests: deterministic embedders."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

TOPICS = ("tea", "coffee", "python", "rust", "hiking", "music", "cat", "dog")


def keyword_vector(text: str) -> list[float]:
    """One axis per topic word: the count of that word in ``text`` (a tiny, predictable 'model')."""
    words = re.findall(r"\w+", text.lower())
    return [float(words.count(topic)) for topic in TOPICS]


def keyword_embed(texts: Sequence[str]) -> list[list[float]]:
    return [keyword_vector(t) for t in texts]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(x * x for x in b))
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb) if na and nb else 0.0


class CountingEmbed:
    """Wraps an embed function and records every call's texts."""

    def __init__(self, embed=keyword_embed) -> None:  # type: ignore[no-untyped-def]
        self.embed = embed
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return self.embed(texts)


class AsyncCountingEmbed(CountingEmbed):
    async def __call__(self, texts: Sequence[str]) -> list[list[float]]:  # type: ignore[override]
        self.calls.append(list(texts))
        return self.embed(texts)
