"""The agent graph with the offline ScriptedModel: the plan -> tool -> evaluate loop end to end."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool
from langgraph.graph import StateGraph

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import AgentState, ScriptedModel, agent_input, build_agent, demo_tools


def config() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "notes.txt").write_text("groceries: milk, eggs\nThe launch code is 4417.\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def main():\n    pass  # TODO: handle errors\n")
    return tmp_path


def test_build_agent_returns_an_uncompiled_graph_with_the_three_nodes(workdir: Path) -> None:
    graph = build_agent(ScriptedModel(), demo_tools(workdir))
    assert isinstance(graph, StateGraph)
    assert set(graph.nodes) == {"plan", "tool", "evaluate"}


def test_arithmetic_task_answers_with_the_calculators_result(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        out = graph.invoke(agent_input("What is 12 * (3 + 4) - 2**5?"), config())

    assert out["evaluation"]["verdict"] == "done"
    assert out["final_answer"] == "12 * (3 + 4) - 2**5 = 52"
    assert out["tool_results"] == [
        {
            "tool": "calculator",
            "args": {"expression": "12 * (3 + 4) - 2**5"},
            "output": "52",
            "call_id": out["tool_results"][0]["call_id"],
            "status": "ok",
        }
    ]
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert out["step"] == 2
    assert out["plan"] == ["answer the task"]


def test_search_task_quotes_the_lines_found_in_the_files(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        out = graph.invoke(agent_input("search for TODO in the files"), config())

    assert out["evaluation"]["verdict"] == "done"
    assert "src/app.py:2: pass  # TODO: handle errors" in out["final_answer"]


async def test_the_same_graph_runs_under_ainvoke(workdir: Path) -> None:
    async with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        out = await graph.ainvoke(agent_input("compute 7 * 6 and read notes.txt"), config())

    assert out["evaluation"]["verdict"] == "done"
    assert "7 * 6 = 42" in out["final_answer"]
    assert "The launch code is 4417." in out["final_answer"]
    assert sorted(r["tool"] for r in out["tool_results"]) == ["calculator", "read_file"]


def test_state_is_checkpointed_after_every_node_on_sqlite(workdir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agent.db'}"
    cfg = config()
    with open_checkpointer(url) as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        graph.invoke(agent_input("What is 2 + 3?"), cfg)
    with open_checkpointer(url) as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        history = list(graph.get_state_history(cfg))
        state = graph.get_state(cfg)

    assert state.values["final_answer"] == "2 + 3 = 5"
    written_by = [h.metadata["source"] for h in reversed(history)]
    assert written_by == ["input", "loop", "loop", "loop", "loop", "loop"]
    after = [next(iter(h.next), None) for h in reversed(history)]
    assert after == ["__start__", "plan", "tool", "plan", "evaluate", None]


def test_max_steps_ends_the_run_with_a_reason(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        out = graph.invoke(agent_input("find zebra in the files", max_steps=3), config())

    assert out["step"] == 3
    assert out["final_answer"] is None
    assert out["evaluation"]["verdict"] == "stopped"
    assert "max_steps=3" in out["evaluation"]["reason"]
    assert "no matches for 'zebra'" in out["evaluation"]["reason"]
    # the search ran once; the later turns only answered again and were judged again
    assert [r["tool"] for r in out["tool_results"]] == ["search_files"]


def test_the_graph_limit_caps_the_threads_limit(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), max_steps=2).compile(checkpointer=saver)
        out = graph.invoke(agent_input("find zebra in the files", max_steps=10), config())

    assert (out["step"], out["max_steps"]) == (2, 2)
    assert out["evaluation"]["verdict"] == "stopped"


def test_the_limit_stops_a_model_that_keeps_calling_tools(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        # one step: the model's first turn calls the calculator, no step is left to answer
        graph = build_agent(ScriptedModel(), demo_tools(workdir), max_steps=1).compile(checkpointer=saver)
        out = graph.invoke(agent_input("What is 1 + 1?"), config())

    assert out["evaluation"] == {
        "verdict": "stopped",
        "reason": "reached max_steps=1 before the model gave an answer",
    }
    assert out["tool_results"][0]["output"] == "2"


def test_a_failing_tool_is_reported_to_the_model_and_judged(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir), max_steps=2).compile(checkpointer=saver)
        out = graph.invoke(agent_input("What is 1 / 0?"), config())

    result = out["tool_results"][0]
    assert (result["tool"], result["status"]) == ("calculator", "error")
    assert "ZeroDivisionError" in result["output"]
    tool_message = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert tool_message.status == "error"
    assert out["evaluation"]["verdict"] == "stopped"
    assert "calculator failed" in out["evaluation"]["reason"]


def test_a_tool_the_model_invents_gets_an_error_message(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        # without a calculator bound, the model answers that it cannot help
        tools = [t for t in demo_tools(workdir) if t.name != "calculator"]
        graph = build_agent(ScriptedModel(), tools, max_steps=2).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input("What is 1 + 1?"), cfg)
        # a call to a tool that does not exist, as a confused real model might make
        call = {"name": "calculator", "args": {"expression": "1+1"}, "id": "c1", "type": "tool_call"}
        graph.update_state(cfg, {"messages": [AIMessage(content="", tool_calls=[call])]}, as_node="plan")
        out = graph.invoke(None, cfg)

    failed = out["tool_results"][-1]
    assert failed["status"] == "error"
    assert "unknown tool 'calculator'" in failed["output"]


def test_tools_with_duplicate_names_are_refused(workdir: Path) -> None:
    tools = demo_tools(workdir)
    with pytest.raises(ValueError, match="unique"):
        build_agent(ScriptedModel(), [*tools, tools[0]])


def test_a_model_spec_or_a_function_is_not_a_model_or_tool(workdir: Path) -> None:
    with pytest.raises(TypeError, match=r"BaseChatModel, got str; load_model\('openai:gpt-4o'\)"):
        build_agent("openai:gpt-4o")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="these are not: <built-in function print>"):
        build_agent(ScriptedModel(), [*demo_tools(workdir), print])  # type: ignore[list-item]


def test_a_thread_takes_a_second_task(workdir: Path) -> None:
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), demo_tools(workdir)).compile(checkpointer=saver)
        cfg = config()
        graph.invoke(agent_input("What is 2 + 2?"), cfg)
        out = graph.invoke(agent_input("What is 3 * 3?", max_steps=4), cfg)

    # the conversation and the tool log go on; the answer and the step count are the new task's
    assert out["final_answer"] == "3 * 3 = 9"
    assert (out["task"], out["step"], out["max_steps"]) == ("What is 3 * 3?", 2, 4)
    assert [r["output"] for r in out["tool_results"]] == ["4", "9"]
    assert len(out["messages"]) == 8


@pytest.mark.parametrize("bad", [0, -1, True, "8"])
def test_bad_max_steps_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="max_steps"):
        build_agent(max_steps=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_steps"):
        agent_input("task", max_steps=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("task", ["", "   ", None])
def test_an_empty_task_is_refused(task: object) -> None:
    with pytest.raises(ValueError, match="task"):
        agent_input(task)  # type: ignore[arg-type]


def test_a_custom_tool_goes_through_the_same_path(workdir: Path) -> None:
    calls: list[str] = []

    def calculator(expression: str) -> str:
        """Add numbers."""
        calls.append(expression)
        return "a custom result"

    tool = StructuredTool.from_function(calculator)
    with open_checkpointer("memory://") as saver:
        graph = build_agent(ScriptedModel(), [tool]).compile(checkpointer=saver)
        out = graph.invoke(agent_input("What is 3 + 4?"), config())

    assert calls == ["3 + 4"]
    assert out["final_answer"] == "3 + 4 = a custom result"


def test_agent_state_declares_the_contract_fields() -> None:
    fields = set(AgentState.__annotations__)
    assert {"task", "plan", "messages", "tool_results", "evaluation", "step", "max_steps"} <= fields
    assert {"memories", "final_answer", "user_id"} <= fields
