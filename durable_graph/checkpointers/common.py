"""Small helpers shared by the checkpointer backends."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig

from durable_graph.errors import ThreadNotFoundError

PRUNE_STRATEGIES = ("keep_latest", "delete")
DELTA_METADATA_KEY = "counters_since_delta_snapshot"
"""Checkpoint metadata key LangGraph writes for threads that use a ``DeltaChannel``."""


def config_address(config: RunnableConfig) -> tuple[str, str, str | None]:
    """``(thread_id, checkpoint_ns, checkpoint_id)`` of a config, or a clear error if it has no thread."""
    configurable: dict[str, Any] = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None or thread_id == "":
        raise ValueError(
            "the config names no thread: pass {'configurable': {'thread_id': ...}} "
            "to invoke a graph that has a checkpointer"
        )
    return str(thread_id), str(configurable.get("checkpoint_ns") or ""), configurable.get("checkpoint_id")


def check_copy(source: str, target: str, *, source_exists: bool, target_exists: bool) -> None:
    """Refuse a ``copy_thread`` from a thread with no checkpoint or onto one that has some."""
    if not source_exists:
        raise ThreadNotFoundError(source)
    if target_exists:
        raise ValueError(
            f"cannot copy thread {source!r} to {target!r}: the target thread already has "
            "checkpoints (delete it first)"
        )


def version_counter(current: str | int | float | None) -> int:
    """The counter of a channel version (``<counter>.<random part>``, or a plain number); 0 for none."""
    if current is None:
        return 0
    if isinstance(current, str):
        return int(current.split(".")[0])
    return int(current)


def next_version(current: str | int | float | None) -> str:
    """The next channel version: a zero-padded counter plus a random part.

    The random part keeps two forks of a thread that reach the same counter from sharing the
    stored value of a channel, since values are stored once per ``(channel, version)``.
    """
    return f"{version_counter(current) + 1:032}.{random.random():016}"


def check_prune_args(thread_ids: Sequence[str], strategy: str) -> list[str]:
    """Validate ``prune`` arguments; returns the thread ids as strings."""
    ids = _thread_id_list(thread_ids)
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(
            f"unknown prune strategy {strategy!r}; expected one of {', '.join(PRUNE_STRATEGIES)}"
        )
    return ids


def check_prune_keep_args(thread_ids: Sequence[str], keep: int) -> list[str]:
    """Validate ``prune_keep`` arguments; returns the thread ids as strings."""
    ids = _thread_id_list(thread_ids)
    if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
        raise ValueError(f"keep must be an int >= 1 (how many checkpoints to keep), got {keep!r}")
    return ids


def delta_refusal(thread_ids: Iterable[str], keep: int) -> NotImplementedError:
    """The error for pruning threads that use a ``DeltaChannel``: their latest value is rebuilt from
    older checkpoints, so dropping those would lose data."""
    operation = "keep_latest" if keep == 1 else f"prune_keep(keep={keep})"
    names = ", ".join(sorted(set(thread_ids)))
    return NotImplementedError(f"{operation} can't prune threads that use a DeltaChannel: {names}")


def _thread_id_list(thread_ids: Sequence[str]) -> list[str]:
    if isinstance(thread_ids, str):
        raise TypeError(f"thread_ids must be a sequence of thread ids, not the string {thread_ids!r}")
    return [str(t) for t in thread_ids]


def check_run_ids(run_ids: Sequence[str]) -> list[str]:
    """Validate ``delete_for_runs`` arguments; returns the run ids as strings."""
    if isinstance(run_ids, str):
        raise TypeError(f"run_ids must be a sequence of run ids, not the string {run_ids!r}")
    return [str(r) for r in run_ids]


def metadata_matches(metadata: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    """Whether every key of ``filter`` has the same value in ``metadata``."""
    return not filter or all(metadata.get(key) == value for key, value in filter.items())
