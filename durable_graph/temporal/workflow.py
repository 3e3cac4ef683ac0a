"""The workflow: drives one thread through its graph, one activity per superstep.

It holds only checkpoint references, never graph state, and obeys Temporal's determinism rules: it
decides what to do next from activity results and resume updates alone.
"""

from __future__ import annotations

from dataclasses import replace

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from durable_graph.temporal.models import (
        PREPARE_ACTIVITY,
        STEP_ACTIVITY,
        WORKFLOW_NAME,
        NodeOptions,
        PrepareRequest,
        RetryOptions,
        RunRequest,
        RunResult,
        StepRequest,
        StepResult,
    )
    from durable_graph.temporal.options import activity_kwargs

# The patch that made "prepare" a local activity: runs recorded before it replay with an activity.
PREPARE_LOCALLY = "prepare-as-local-activity"
# Preparing applies the input and runs no node: short, and retried a few times (the database may blink).
PREPARE_OPTIONS = NodeOptions(
    start_to_close_timeout=120.0, heartbeat_timeout=None, retry=RetryOptions(maximum_attempts=10)
)


@workflow.defn(name=WORKFLOW_NAME)
class GraphWorkflow:
    def __init__(self) -> None:
        self._state: StepResult | None = None
        self._resume: dict | None = None
        # Set once the step given the resume value has ended, with (error type, why) if it refused it.
        self._resume_done = False
        self._resume_failure: tuple[str, str] | None = None
        self._steps = 0

    @workflow.run
    async def run(self, request: RunRequest) -> RunResult:
        info = workflow.info()
        token = f"{info.workflow_id}/{info.run_id}"
        self._steps = request.steps_before
        state = request.state
        if state is None:
            prepare = PrepareRequest(
                request.thread_id, request.graph, request.database, f"{token}/prepare", request.input
            )
            # A local activity: run by the worker that runs this workflow task, it costs no round of
            # task dispatch (about one node's worth of time per run).
            run_prepare = (
                workflow.execute_local_activity
                if workflow.patched(PREPARE_LOCALLY)
                else workflow.execute_activity
            )
            state = await run_prepare(
                PREPARE_ACTIVITY,
                prepare,
                result_type=StepResult,
                summary="prepare",
                **activity_kwargs(PREPARE_OPTIONS),
            )
        self._state = state
        while state.status != "done":
            resume = None
            if state.status == "waiting":
                await workflow.wait_condition(lambda: self._resume is not None)
                resume = self._resume
            elif (
                self._steps - request.steps_before >= request.steps_per_run
                or workflow.info().is_continue_as_new_suggested()
            ):
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(replace(request, input=None, state=state, steps_before=self._steps))
            step_token = f"{token}/{self._steps}"
            step = StepRequest(
                request.thread_id, request.graph, request.database, step_token, state.checkpoint_id, resume
            )
            try:
                state = await workflow.execute_activity(
                    STEP_ACTIVITY,
                    step,
                    result_type=StepResult,
                    summary=", ".join(state.next),
                    **activity_kwargs(state.next_options),
                )
            except ActivityError as error:
                if resume is not None:
                    self._resume_failure = ("StepFailed", str(error.cause or error))
                    self._resume_done = True
                raise
            if state.advanced_elsewhere:
                self._state = state
                if resume is not None:
                    self._resume = None
                    self._resume_failure = ("ThreadAdvancedElsewhere", state.advanced_elsewhere)
                    self._resume_done = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                return RunResult(
                    request.thread_id,
                    state.checkpoint_id,
                    self._steps,
                    ended="advanced_elsewhere",
                    detail=state.advanced_elsewhere,
                )
            self._steps += 1
            self._state = state
            if resume is not None:
                self._resume = None
                if state.resume_error:
                    self._resume_failure = ("InvalidResumeError", state.resume_error)
                self._resume_done = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(request.thread_id, state.checkpoint_id, self._steps)

    @workflow.update(name="resume")
    async def resume(self, value: dict) -> list[str]:
        """Resume a thread waiting on ``interrupt()``; ``value`` is encoded (see ``payload``).

        Completes once the interrupted node has run again with the value, returning the ids of the
        interrupts it answered; fails, leaving the thread waiting, if the graph refused the value.
        """
        answered = [i.id for i in self._state.interrupts] if self._state else []
        self._resume, self._resume_done, self._resume_failure = value, False, None
        await workflow.wait_condition(lambda: self._resume_done)
        if self._resume_failure:
            kind, message = self._resume_failure
            raise ApplicationError(message, type=kind, non_retryable=True)
        return answered

    @resume.validator
    def _validate_resume(self, value: dict) -> None:
        if self._resume is not None:
            raise ValueError("thread is not waiting for a resume value (it is being resumed)")
        if self._state is not None and self._state.advanced_elsewhere:
            raise ValueError(f"this run has ended: {self._state.advanced_elsewhere}")
        if self._state is None or self._state.status != "waiting":
            status = self._state.status if self._state else "starting"
            raise ValueError(f"thread is not waiting for a resume value (it is {status})")
        if not isinstance(value, dict) or not ({"json"} <= value.keys() or {"serde", "data"} <= value.keys()):
            raise ValueError(f"resume value is not encoded with durable_graph.temporal.payload: {value!r}")

    @workflow.query(name="status")
    def status(self) -> StepResult | None:
        """Where the thread stands: its latest checkpoint id, next nodes and pending interrupts."""
        return self._state
