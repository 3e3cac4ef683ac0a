"""``open_checkpointer(url)``: a context manager, for ``with`` and ``async with`` alike."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver

from durable_graph.urls import BackendURL, parse_url


class Openable(Protocol):
    """What a backend object offers so that one opener serves both sync and async code."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    async def aopen(self) -> None: ...
    async def aclose(self) -> None: ...


T = TypeVar("T", bound=Openable)


class ContextManaged:
    """``with`` and ``async with`` for a backend object, in terms of its open/close and aopen/aclose."""

    def open(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    async def aopen(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class Opener(Generic[T]):
    """Opens the object it builds on ``__enter__`` or ``__aenter__`` and closes it on exit."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._opened: T | None = None

    def __enter__(self) -> T:
        obj = self._build()
        obj.open()
        self._opened = obj
        return obj

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    async def __aenter__(self) -> T:
        obj = self._build()
        await obj.aopen()
        self._opened = obj
        return obj

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._opened is not None:
            await self._opened.aclose()
            self._opened = None


def _build_saver(parsed: BackendURL) -> BaseCheckpointSaver:
    if parsed.kind in ("postgres", "embedded"):
        from durable_graph.checkpointers.postgres import PostgresCheckpointer

        return PostgresCheckpointer(parsed.postgres_conninfo())
    if parsed.kind == "sqlite":
        from durable_graph.checkpointers.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(parsed.target)
    from durable_graph.checkpointers.memory import MemoryCheckpointer

    return MemoryCheckpointer()


def open_checkpointer(url: str | None = None) -> Opener:
    """Open the checkpointer behind ``url`` (default: ``$DURABLE_GRAPH_URL``, else ``embedded://``).

    ``with open_checkpointer(url) as saver`` and ``async with open_checkpointer(url) as saver`` both
    yield a saver that ``graph.invoke`` and ``graph.ainvoke`` can use. The schema is created or
    migrated on open. A bad URL raises ``InvalidURLError`` at once.
    """
    parsed = parse_url(url)
    return Opener(lambda: _build_saver(parsed))  # type: ignore[arg-type,return-value]
