"""Per-node Temporal activity options, read from node metadata.

A node opts in with ``metadata={"temporal": {...}}``; times are seconds (or ``timedelta``)::

    builder.add_node("tool", tool, metadata={"temporal": {
        "start_to_close_timeout": 60,
        "heartbeat_timeout": 10,
        "retry": {"maximum_attempts": 3, "initial_interval": 1, "backoff_coefficient": 2},
    }})

Only the standard library and ``temporalio`` are imported, so the workflow can use this module.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from durable_graph.temporal.models import NodeOptions, RetryOptions

METADATA_KEY = "temporal"

_TIMEOUTS = ("start_to_close_timeout", "heartbeat_timeout", "schedule_to_close_timeout")
_RETRY_NUMBERS = ("initial_interval", "backoff_coefficient", "maximum_interval")


class NodeOptionsError(ValueError):
    """A node's ``metadata["temporal"]`` is malformed."""


def _seconds(node: str, key: str, value: Any, *, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise NodeOptionsError(
            f"node {node!r}: metadata['temporal'][{key!r}] must be a positive number of seconds "
            f"or a timedelta, got {value!r}"
        )
    return float(value)


def _retry(node: str, raw: Any) -> RetryOptions:
    if not isinstance(raw, Mapping):
        raise NodeOptionsError(f"node {node!r}: metadata['temporal']['retry'] must be a dict, got {raw!r}")
    known = {f.name for f in fields(RetryOptions)}
    if unknown := sorted(set(raw) - known):
        raise NodeOptionsError(
            f"node {node!r}: unknown retry option(s) {unknown} in metadata['temporal']['retry']; "
            f"known: {sorted(known)}"
        )
    retry = RetryOptions()
    if "maximum_attempts" in raw:
        attempts = raw["maximum_attempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise NodeOptionsError(
                f"node {node!r}: retry maximum_attempts must be an int >= 0 (0 = unlimited), got {attempts!r}"
            )
        retry.maximum_attempts = attempts
    for key in _RETRY_NUMBERS:
        if key in raw:
            setattr(retry, key, _seconds(node, f"retry.{key}", raw[key], allow_none=False))
    if "maximum_interval" not in raw:
        retry.maximum_interval = max(retry.maximum_interval, retry.initial_interval)
    elif retry.maximum_interval < retry.initial_interval:
        raise NodeOptionsError(f"node {node!r}: retry maximum_interval is shorter than initial_interval")
    if retry.backoff_coefficient < 1:
        raise NodeOptionsError(f"node {node!r}: retry backoff_coefficient must be >= 1")
    if "non_retryable_error_types" in raw:
        types = raw["non_retryable_error_types"]
        if not isinstance(types, list | tuple) or not all(isinstance(t, str) for t in types):
            raise NodeOptionsError(
                f"node {node!r}: retry non_retryable_error_types must be a list of exception class names"
            )
        retry.non_retryable_error_types = list(types)
    return retry


def node_options(node: str, metadata: Mapping[str, Any] | None, defaults: NodeOptions) -> NodeOptions:
    """The options of ``node`` from its metadata, falling back to ``defaults``."""
    raw = (metadata or {}).get(METADATA_KEY)
    if raw is None:
        return defaults
    if not isinstance(raw, Mapping):
        raise NodeOptionsError(f"node {node!r}: metadata['temporal'] must be a dict, got {raw!r}")
    known = {*_TIMEOUTS, "retry"}
    if unknown := sorted(set(raw) - known):
        raise NodeOptionsError(
            f"node {node!r}: unknown option(s) {unknown} in metadata['temporal']; known: {sorted(known)}"
        )
    opts = replace(defaults)
    for key in _TIMEOUTS:
        if key in raw:
            setattr(opts, key, _seconds(node, key, raw[key], allow_none=key != "start_to_close_timeout"))
    if "retry" in raw:
        opts.retry = _retry(node, raw["retry"])
    return opts


def _max_optional(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def merge(options: list[NodeOptions]) -> NodeOptions:
    """Options for one activity running several nodes of a superstep: the most generous of each."""
    if not options:
        return NodeOptions()
    if len(options) == 1:
        return options[0]
    attempts = [o.retry.maximum_attempts for o in options]
    return NodeOptions(
        start_to_close_timeout=max(o.start_to_close_timeout for o in options),
        heartbeat_timeout=_max_optional(o.heartbeat_timeout for o in options),
        schedule_to_close_timeout=_max_optional(o.schedule_to_close_timeout for o in options),
        retry=RetryOptions(
            maximum_attempts=0 if 0 in attempts else max(attempts),
            initial_interval=min(o.retry.initial_interval for o in options),
            backoff_coefficient=max(o.retry.backoff_coefficient for o in options),
            maximum_interval=max(o.retry.maximum_interval for o in options),
            non_retryable_error_types=sorted({t for o in options for t in o.retry.non_retryable_error_types}),
        ),
    )


def activity_kwargs(options: NodeOptions) -> dict[str, Any]:
    """Keyword arguments for ``workflow.execute_activity``."""
    retry = options.retry
    kwargs: dict[str, Any] = {
        "start_to_close_timeout": timedelta(seconds=options.start_to_close_timeout),
        "retry_policy": RetryPolicy(
            maximum_attempts=retry.maximum_attempts,
            initial_interval=timedelta(seconds=retry.initial_interval),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval=timedelta(seconds=retry.maximum_interval),
            non_retryable_error_types=retry.non_retryable_error_types or None,
        ),
    }
    if options.heartbeat_timeout is not None:
        kwargs["heartbeat_timeout"] = timedelta(seconds=options.heartbeat_timeout)
    if options.schedule_to_close_timeout is not None:
        kwargs["schedule_to_close_timeout"] = timedelta(seconds=options.schedule_to_close_timeout)
    return kwargs
