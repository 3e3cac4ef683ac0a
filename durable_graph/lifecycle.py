"""Opening and closing backend objects the same way from sync and async code.

Checkpointers, the memory store and the tool result log each have ``open``/``close`` and
``aopen``/``aclose``. ``ContextManaged`` gives such an object ``with`` and ``async with``;
``Opener`` builds one lazily and opens it on entering, which is what ``open_checkpointer(url)``,
``open_store(url)`` and ``open_tool_log(url)`` return. Nothing here knows any backend.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar


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
