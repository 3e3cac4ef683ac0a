"""The CLI on Temporal: the agent as a graph factory for workers, and runs started or resumed there.

A thread run with ``--temporal`` is checkpointed to the same database as a local run, with the same run
settings in its checkpoint metadata, so ``show``, ``history``, ``threads`` and a later local ``resume``
or ``approve`` see no difference.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer
from langgraph.graph import StateGraph

from durable_graph.cli_runner import load_tools
from durable_graph.cli_threads import RunSettings

AGENT_FACTORY = "durable_graph.cli_temporal:agent_graph"

TemporalOption = Annotated[
    str | None,
    typer.Option(
        "--temporal",
        envvar="DURABLE_GRAPH_TEMPORAL",
        help="Run on the Temporal server at HOST:PORT (default: $DURABLE_GRAPH_TEMPORAL; unset: locally).",
        show_default=False,
    ),
]
TaskQueueOption = Annotated[str, typer.Option("--task-queue", help="Temporal task queue the workers poll.")]


def agent_graph(**settings: Any) -> StateGraph:
    """The agent of a thread, from its run settings: the graph factory Temporal workers build."""
    from durable_graph.graphs import build_agent, load_model

    s = RunSettings(**settings)
    return build_agent(
        load_model(s.model, base_url=s.base_url), load_tools(s.tools, s.workdir), max_steps=s.max_steps
    )


def start_on_temporal(
    address: str, task_queue: str, url: str, thread_id: str, value: Any, settings: RunSettings
) -> None:
    """Run the thread on Temporal (``value`` None continues it) until it ends or waits for approval."""
    from durable_graph import temporal

    temporal.start_run(
        address,
        thread_id=thread_id,
        graph=AGENT_FACTORY,
        graph_kwargs=asdict(settings),
        metadata=settings.to_metadata(),
        input=value,
        url=url,
        task_queue=task_queue,
        wait=True,
    )


def answer_on_temporal(address: str, thread_id: str, decision: Any) -> bool:
    """Send ``decision`` to the thread's Temporal run if one waits for it; False if none does."""
    from durable_graph import temporal
    from durable_graph.errors import TemporalRunError

    try:
        waiting = temporal.run_status(address, thread_id).status == "waiting"
    except TemporalRunError:
        return False
    if waiting:
        temporal.send_resume(address, thread_id, decision, wait=True)
    return waiting
