"""A deliberately changed version of the workflow, registered under the same name: it skips the
"prepare" activity, so replaying a history recorded by the real workflow must fail."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from durable_graph.temporal.models import (
        STEP_ACTIVITY,
        WORKFLOW_NAME,
        RunRequest,
        RunResult,
        StepRequest,
        StepResult,
    )


@workflow.defn(name=WORKFLOW_NAME)
class ChangedWorkflow:
    @workflow.run
    async def run(self, request: RunRequest) -> RunResult:
        state = await workflow.execute_activity(
            STEP_ACTIVITY,
            StepRequest(request.thread_id, request.graph, request.database, "x", None),
            result_type=StepResult,
            start_to_close_timeout=timedelta(seconds=60),
        )
        return RunResult(request.thread_id, state.checkpoint_id, 1)
