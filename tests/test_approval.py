"""Approving, editing and rejecting tool calls through LangGraph's interrupt, in one process."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from durable_graph.checkpointers import open_checkpointer
from durable_graph.errors import DurableGraphError, InvalidResumeError
from durable_graph.graphs import (
    Decision,
    ScriptedModel,
    agent_input,
    approve,
    build_agent,
    demo_tools,
    edit,
    needs_approval,
    parse_decision,
    reject,
    requires_approval,
)

TASK = "search for launch in the files and write a report"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("The launch code is 4417.\n")
    return tmp_path


def config() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def reports(workdir: Path) -> dict[str, str]:
    folder = workdir / "reports"
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.exists() else {}


def pending(graph: CompiledStateGraph, cfg: RunnableConfig) -> dict:
    (only,) = graph.get_state(cfg).interrupts
    return only.value


def test_the_interrupt_payload_names_the_pending_call(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        out = graph.invoke(agent_input(TASK), cfg)

    (interrupt,) = out["__interrupt__"]
    payload = interrupt.value
    assert payload["type"] == "approval"
    assert payload["tool"] == "write_report"
    assert payload["args"]["content"] == "Search for 'launch':\nnotes.txt:1: The launch code is 4417."
    assert payload["call_id"] and "write_report" in payload["message"]
    assert interrupt.response_schema["properties"]["action"]["enum"] == ["approve", "edit", "reject"]
    assert reports(workdir) == {}  # nothing was written before the decision


def test_approve_runs_the_call_as_proposed(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input(TASK), cfg)
        out = graph.invoke(approve(), cfg)

    (name, text), *_ = reports(workdir).items()
    assert text.endswith("notes.txt:1: The launch code is 4417.\n")
    assert out["evaluation"]["verdict"] == "done"
    assert f"wrote reports/{name}" in out["final_answer"]


def test_edit_runs_the_call_with_the_new_args(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input(TASK), cfg)
        out = graph.invoke(edit({"title": "Codes", "content": "redacted"}), cfg)

    assert reports(workdir) == {"codes.md": "# Codes\n\nredacted\n"}
    assert out["tool_results"][-1]["args"] == {"title": "Codes", "content": "redacted"}
    assert "wrote reports/codes.md" in out["final_answer"]


def test_reject_tells_the_model_the_reason_and_runs_nothing(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input(TASK), cfg)
        out = graph.invoke(reject("codes stay out of reports"), cfg)

    assert reports(workdir) == {}
    told = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.name == "write_report"]
    assert [m.content for m in told] == ["The reviewer rejected this call: codes stay out of reports"]
    assert out["tool_results"][-1]["status"] == "rejected"
    assert "codes stay out of reports" in out["final_answer"]


async def test_approval_under_ainvoke(workdir: Path) -> None:
    async with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        out = await graph.ainvoke(agent_input(TASK), cfg)
        assert out["__interrupt__"][0].value["tool"] == "write_report"
        out = await graph.ainvoke(edit({"title": "Async", "content": "ok"}), cfg)

    assert reports(workdir) == {"async.md": "# Async\n\nok\n"}
    assert out["evaluation"]["verdict"] == "done"


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ({"action": "maybe"}, "unknown action 'maybe'"),
        ("yes", "must be a dict"),
        ({"action": "edit"}, "'edit' needs 'args' as a dict"),
        ({"action": "edit", "args": ["title"]}, "'edit' needs 'args' as a dict"),
        ({"action": "edit", "args": {"titel": "x", "content": "y"}}, "unknown names ['titel']"),
        ({"action": "edit", "args": {"title": "x"}}, "content: Field required"),
        (
            {"action": "edit", "args": {"title": ["x"], "content": "y"}},
            "title: Input should be a valid string",
        ),
        ({"action": "reject"}, "'reject' needs a non-empty 'reason'"),
        ({"action": "reject", "reason": "  "}, "'reject' needs a non-empty 'reason'"),
        ({"action": "approve", "args": {}}, "'approve' takes no 'args'"),
    ],
)
def test_malformed_resume_values_are_refused_and_the_interrupt_stays_answerable(
    workdir: Path, value: object, complaint: str
) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input(TASK), cfg)
        before = pending(graph, cfg)

        with pytest.raises(InvalidResumeError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
            graph.invoke(Command(resume=value), cfg)

        assert pending(graph, cfg) == before
        assert reports(workdir) == {}
        out = graph.invoke(edit({"title": "Fixed", "content": "second try"}), cfg)
    assert out["evaluation"]["verdict"] == "done"
    assert reports(workdir) == {"fixed.md": "# Fixed\n\nsecond try\n"}


def test_parse_decision_reads_the_resume_helpers() -> None:
    assert parse_decision(approve()) == Decision("approve")
    assert parse_decision(edit({"a": 1})) == Decision("edit", args={"a": 1})
    assert parse_decision(reject("no").resume) == Decision("reject", reason="no")
    error = pytest.raises(InvalidResumeError, parse_decision, {"action": 1})
    assert isinstance(error.value, DurableGraphError) and isinstance(error.value, ValueError)
    # LangGraph reads an empty dict as an empty map of resume values by interrupt id, so a
    # caller should check values with parse_decision before sending them
    with pytest.raises(InvalidResumeError, match="unknown action None"):
        parse_decision({})


def test_requires_approval_marks_any_tool(workdir: Path) -> None:
    ran: list[str] = []

    def calculator(expression: str) -> str:
        """Pretend to compute."""
        ran.append(expression)
        return "41"

    tool = requires_approval(StructuredTool.from_function(calculator))
    assert needs_approval(tool) and tool.metadata == {"requires_approval": True}
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), [tool]).compile(checkpointer=saver)
        cfg = config()
        out = graph.invoke(agent_input("What is 40 + 1?"), cfg)
        assert out["__interrupt__"][0].value["args"] == {"expression": "40 + 1"}
        assert ran == []
        out = graph.invoke(approve(), cfg)
    assert ran == ["40 + 1"]
    assert out["final_answer"] == "40 + 1 = 41"


def test_tools_of_a_turn_run_only_after_every_approval(workdir: Path) -> None:
    ran: list[str] = []

    def calculator(expression: str) -> str:
        """Compute."""
        ran.append("calculator")
        return "1"

    def search_files(pattern: str) -> str:
        """Search."""
        ran.append("search_files")
        return "x.txt:1: x"

    tools = [
        StructuredTool.from_function(calculator),
        requires_approval(StructuredTool.from_function(search_files)),
    ]
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), tools).compile(checkpointer=saver)
        cfg = config()
        out = graph.invoke(agent_input("What is 1 + 0? Also find x in the files"), cfg)
        assert out["__interrupt__"][0].value["tool"] == "search_files"
        assert ran == []  # the calculator waits for the search to be approved
        graph.invoke(reject("not now"), cfg)
    assert ran == ["calculator"]


def test_a_decision_can_be_addressed_to_the_interrupt_by_id(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        (interrupt,) = graph.invoke(agent_input(TASK), cfg)["__interrupt__"]
        with pytest.raises(InvalidResumeError, match="'reject' needs"):
            graph.invoke(Command(resume={interrupt.id: {"action": "reject"}}), cfg)
        out = graph.invoke(Command(resume={interrupt.id: reject("no").resume}), cfg)
    assert out["tool_results"][-1]["status"] == "rejected"
    assert reports(workdir) == {}
