"""What crosses the Temporal boundary: references to checkpoints and small statuses, never whole states.

Only the standard library is imported here, so the workflow sandbox can pass this module through.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

WORKFLOW_NAME = "DurableGraphRun"
PREPARE_ACTIVITY = "durable_graph.prepare_thread"
STEP_ACTIVITY = "durable_graph.run_step"
DEFAULT_TASK_QUEUE = "durable-graph"
WORKFLOW_ID_PREFIX = "durable-graph-"

# "running": the thread has nodes to run; "waiting": a node called interrupt() and needs a resume value;
# "done": the graph reached END.
ThreadStatus = Literal["running", "waiting", "done"]
# How a workflow ended: the graph reached END, or the thread had been advanced by another runner
# (a local run, another workflow) and the workflow stopped without running anything more.
RunEnd = Literal["done", "advanced_elsewhere"]


@dataclass
class RetryOptions:
    """A Temporal retry policy in plain numbers (seconds); ``maximum_attempts`` 0 means unlimited."""

    maximum_attempts: int = 3
    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    maximum_interval: float = 60.0
    non_retryable_error_types: list[str] = field(default_factory=list)


@dataclass
class NodeOptions:
    """The activity options of one node (or of a superstep of several nodes), in seconds."""

    start_to_close_timeout: float = 600.0
    heartbeat_timeout: float | None = 30.0
    schedule_to_close_timeout: float | None = None
    retry: RetryOptions = field(default_factory=RetryOptions)


@dataclass
class GraphSpec:
    """Which graph to run: ``factory`` is ``"package.module:function"`` returning an uncompiled StateGraph."""

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    """Checkpoint metadata stamped on every checkpoint the run writes (e.g. the CLI's run settings)."""


@dataclass
class PrepareRequest:
    """Apply ``input`` (an encoded value, see ``payload``; None = continue as is) and report the thread.

    ``database`` is the backend URL without its password: workers refuse runs meant for another database.
    ``token`` marks the checkpoints this activity writes, so that a retry can tell it already ran.
    """

    thread_id: str
    graph: GraphSpec
    database: str
    token: str
    input: dict[str, Any] | None = None


@dataclass
class StepRequest:
    """Advance ``thread_id`` by one superstep, starting from checkpoint ``expected_checkpoint_id``."""

    thread_id: str
    graph: GraphSpec
    database: str
    token: str
    expected_checkpoint_id: str | None
    resume: dict[str, Any] | None = None


@dataclass
class PendingInterrupt:
    id: str
    node: str
    value: Any


@dataclass
class StepResult:
    """Where the thread stands after an activity: a checkpoint reference and what comes next."""

    thread_id: str
    checkpoint_id: str | None
    status: ThreadStatus
    next: list[str] = field(default_factory=list)
    next_options: NodeOptions = field(default_factory=NodeOptions)
    interrupts: list[PendingInterrupt] = field(default_factory=list)
    # Why the graph refused the resume value it was given (it still waits for a valid one).
    resume_error: str | None = None
    # Set when the step ran nothing because another runner had advanced the thread: says how.
    advanced_elsewhere: str | None = None


@dataclass
class RunRequest:
    """The workflow's argument. After ``steps_per_run`` steps the workflow continues as new (a fresh
    history); ``state`` then tells the new run where the thread stood."""

    thread_id: str
    graph: GraphSpec
    database: str
    input: dict[str, Any] | None = None
    steps_per_run: int = 1000
    state: StepResult | None = None
    steps_before: int = 0


@dataclass
class RunResult:
    """The workflow's result: ``ended`` says why it ended (``detail``: how, when not "done")."""

    thread_id: str
    checkpoint_id: str | None
    steps: int
    ended: RunEnd = "done"
    detail: str | None = None


def workflow_id_for(thread_id: str) -> str:
    """The Temporal workflow id of a thread: one running workflow per thread."""
    return WORKFLOW_ID_PREFIX + thread_id
