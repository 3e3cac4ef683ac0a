"""The workflow as it was before "prepare" became a local activity, registered under the same name:
it runs "prepare" as an activity of its own. Runs it records stand for the histories of runs started
before an upgrade, which the current workflow must replay. Only what a run without interrupts does
is kept."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_graph.temporal.models import (
        PREPARE_ACTIVITY,
        STEP_ACTIVITY,
        WORKFLOW_NAME,
        PrepareRequest,
        RunRequest,
        RunResult,
        StepRequest,
        StepResult,
    )
    from durable_graph.temporal.options import activity_kwargs
    from durable_graph.temporal.workflow import PREPARE_OPTIONS


@workflow.defn(name=WORKFLOW_NAME)
class PreviousWorkflow:
    @workflow.run
    async def run(self, request: RunRequest) -> RunResult:
        info = workflow.info()
        token = f"{info.workflow_id}/{info.run_id}"
        state = await workflow.execute_activity(
            PREPARE_ACTIVITY,
            PrepareRequest(
                request.thread_id, request.graph, request.database, f"{token}/prepare", request.input
            ),
            result_type=StepResult,
            summary="prepare",
            **activity_kwargs(PREPARE_OPTIONS),
        )
        steps = 0
        while state.status != "done":
            step = StepRequest(
                request.thread_id,
                request.graph,
                request.database,
                f"{token}/{steps}",
                state.checkpoint_id,
                None,
            )
            state = await workflow.execute_activity(
                STEP_ACTIVITY,
                step,
                result_type=StepResult,
                summary=", ".join(state.next),
                **activity_kwargs(state.next_options),
            )
            steps += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        return RunResult(request.thread_id, state.checkpoint_id, steps)
