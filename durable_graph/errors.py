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


class ThreadBusyError(DurableGraphError):
    """Another process holds the lease of a thread: it is running that thread right now."""

    def __init__(self, thread_id: str, waited: float | None = None) -> None:
        message = f"thread {thread_id!r} is busy: another process is running it"
        if waited is not None:
            message += f" (waited {waited:.1f}s for it to finish)"
        super().__init__(message)
        self.thread_id = thread_id


class LeaseLostError(DurableGraphError):
    """The runner lost the lease of its thread (another runner took it over, or the database was
    unreachable for too long): it must stop, and nothing it writes from now on is committed."""

    def __init__(self, thread_id: str, reason: str) -> None:
        super().__init__(
            f"lost the lease of thread {thread_id!r} ({reason}); this run stopped and nothing more of it "
            "was saved. Another runner holds the thread now, or it can be resumed"
        )
        self.thread_id = thread_id
        self.reason = reason


class EncryptionKeyError(DurableGraphError, ValueError):
    """An encryption key is malformed, missing, or not the one that encrypted what is read."""


class InvalidResumeError(DurableGraphError, ValueError):
    """A value given to resume an approval interrupt is malformed."""


class PathOutsideWorkdirError(DurableGraphError, ValueError):
    """A file tool was asked for a path outside the directory it is confined to."""


class MissingDependencyError(DurableGraphError, ImportError):
    """An optional package needed for the requested feature is not installed."""


class InvalidModelSpecError(DurableGraphError, ValueError):
    """A model spec such as ``openai:gpt-4o-mini`` could not be understood."""


class InvalidGraphError(DurableGraphError, ValueError):
    """A graph factory (``"package.module:function"`` + kwargs) or its node metadata is unusable."""


class WorkflowRunningError(ThreadBusyError):
    """A Temporal workflow is already running this thread; Temporal refused to start a second one."""

    def __init__(self, thread_id: str, workflow_id: str) -> None:
        DurableGraphError.__init__(
            self,
            f"thread {thread_id!r} is busy: Temporal workflow {workflow_id!r} is already running it "
            "(wait for it, resume it, or cancel it first)",
        )
        self.thread_id = thread_id
        self.workflow_id = workflow_id


class ThreadConflictError(DurableGraphError, RuntimeError):
    """The thread moved past the checkpoint a runner expected: another runner advanced it."""

    def __init__(self, thread_id: str, expected: str | None, found: str | None) -> None:
        super().__init__(
            f"thread {thread_id!r} was advanced by another runner: expected its latest checkpoint to be "
            f"{expected!r}, found {found!r}; nothing was run"
        )
        self.thread_id = thread_id


class ThreadAdvancedElsewhereError(DurableGraphError, RuntimeError):
    """A Temporal run found its thread advanced by another runner and ended without running anything."""


class TemporalUnavailableError(DurableGraphError, ConnectionError):
    """No Temporal server answers at the given address, or the dev server could not be started."""


class StoreConfigError(DurableGraphError, ValueError):
    """The memory store was opened with settings that do not fit (e.g. its stored vector dims)."""


class InvalidFilterError(DurableGraphError, ValueError):
    """A search filter could not be understood."""


class EmbeddingError(DurableGraphError, ValueError):
    """An embedder returned the wrong number of vectors, or vectors of the wrong size."""


class TemporalRunError(DurableGraphError, RuntimeError):
    """A Temporal run of a thread failed, does not exist, or cannot take the request (e.g. a resume)."""
