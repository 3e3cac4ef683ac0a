"""Errors raised by durable-graph. Every one names what was wrong."""

from __future__ import annotations


class DurableGraphError(Exception):
    """Base class of every error durable-graph raises on purpose."""


class InvalidURLError(DurableGraphError, ValueError):
    """A backend URL could not be understood."""


class BackendUnavailableError(DurableGraphError, ConnectionError):
    """The database behind a URL could not be reached or started."""


class ThreadNotFoundError(DurableGraphError, LookupError):
    """No checkpoint exists for the given thread id."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(f"thread {thread_id!r} does not exist (no checkpoint was ever saved for it)")
        self.thread_id = thread_id


class CorruptCheckpointError(DurableGraphError):
    """A stored blob could not be decoded."""

    def __init__(self, thread_id: str, checkpoint_id: str | None, detail: str) -> None:
        where = f"thread {thread_id!r}" + (f", checkpoint {checkpoint_id!r}" if checkpoint_id else "")
        super().__init__(f"cannot decode stored data of {where}: {detail}")
        self.thread_id = thread_id
        self.checkpoint_id = checkpoint_id


class SchemaVersionError(DurableGraphError):
    """The database was written by a newer durable-graph than this one."""
