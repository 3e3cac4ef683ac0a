"""Run graphs on Temporal: every superstep (usually one node) is an activity, state stays in the database.

Needs the ``temporal`` extra (``pip install 'durable-graph[temporal]'``). See ``docs/temporal.md``.
Attributes are imported lazily so that the workflow sandbox can import ``durable_graph.temporal.workflow``
without pulling in LangGraph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from durable_graph.temporal.client import (
        RunStatus,
        cancel_run,
        cancel_run_async,
        run_status,
        run_status_async,
        send_resume,
        send_resume_async,
        start_run,
        start_run_async,
        wait_run,
        wait_run_async,
    )
    from durable_graph.temporal.devserver import dev_server, run_dev_server
    from durable_graph.temporal.models import DEFAULT_TASK_QUEUE, workflow_id_for
    from durable_graph.temporal.worker import run_worker, running_worker

_EXPORTS = {
    "RunStatus": "client",
    "cancel_run": "client",
    "cancel_run_async": "client",
    "run_status": "client",
    "run_status_async": "client",
    "send_resume": "client",
    "send_resume_async": "client",
    "start_run": "client",
    "start_run_async": "client",
    "wait_run": "client",
    "wait_run_async": "client",
    "dev_server": "devserver",
    "run_dev_server": "devserver",
    "DEFAULT_TASK_QUEUE": "models",
    "workflow_id_for": "models",
    "run_worker": "worker",
    "running_worker": "worker",
}

__all__ = [
    "DEFAULT_TASK_QUEUE",
    "RunStatus",
    "cancel_run",
    "cancel_run_async",
    "dev_server",
    "run_dev_server",
    "run_status",
    "run_status_async",
    "run_worker",
    "running_worker",
    "send_resume",
    "send_resume_async",
    "start_run",
    "start_run_async",
    "wait_run",
    "wait_run_async",
    "workflow_id_for",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "temporalio":
            from durable_graph.errors import MissingDependencyError

            raise MissingDependencyError(
                "running on Temporal needs the 'temporalio' package; "
                "install it with: pip install 'durable-graph[temporal]'"
            ) from exc
        raise
    return getattr(module, name)
