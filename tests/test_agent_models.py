"""``load_model`` and the offline ``ScriptedModel`` used as a real chat model."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from durable_graph.errors import InvalidModelSpecError, MissingDependencyError
from durable_graph.graphs import ScriptedModel, demo_tools, load_model
from durable_graph.graphs.prompts import evaluator_messages


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("spec", [None, "scripted", " Scripted "])
def test_no_spec_or_scripted_is_the_offline_fake(spec: str | None) -> None:
    assert isinstance(load_model(spec), ScriptedModel)


@pytest.mark.parametrize("spec", ["gpt-4o-mini", ":gpt-4o", "openai:", "  "])
def test_a_spec_without_provider_and_name_is_refused(spec: str) -> None:
    with pytest.raises(InvalidModelSpecError, match="provider:model"):
        load_model(spec)


def test_a_base_url_needs_a_model_name() -> None:
    with pytest.raises(InvalidModelSpecError, match="needs a model name"):
        load_model(None, base_url="http://localhost:8000/v1")


def test_provider_models_come_from_langchain() -> None:
    if not installed("langchain"):
        with pytest.raises(MissingDependencyError, match="pip install langchain"):
            load_model("openai:gpt-4o-mini", api_key="sk-test")
    elif installed("langchain_openai"):
        assert isinstance(load_model("openai:gpt-4o-mini", api_key="sk-test"), BaseChatModel)
    else:
        with pytest.raises(MissingDependencyError, match="gpt-4o-mini"):
            load_model("openai:gpt-4o-mini", api_key="sk-test")


def test_openai_compatible_servers_go_through_chat_openai() -> None:
    if not installed("langchain_openai"):
        with pytest.raises(MissingDependencyError, match="pip install langchain-openai"):
            load_model("llama3.1", base_url="http://localhost:8000/v1")
    else:
        model = load_model("openai:llama3.1", base_url="http://localhost:8000/v1")
        assert model.model_name == "llama3.1"  # type: ignore[attr-defined]


def test_scripted_model_calls_bound_tools_like_a_real_model(tmp_path: Path) -> None:
    tools = demo_tools(tmp_path)
    bound = ScriptedModel().bind_tools(tools)
    assert [t["function"]["name"] for t in bound.kwargs["tools"]] == [t.name for t in tools]  # type: ignore[attr-defined]

    reply = bound.invoke([HumanMessage("What is 2 + 2? Then list the files.")])
    assert isinstance(reply, AIMessage)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", {"expression": "2 + 2"}),
        ("list_files", {}),
    ]
    again = bound.invoke([HumanMessage("What is 2 + 2? Then list the files.")])
    assert (again.content, again.tool_calls) == (reply.content, reply.tool_calls)  # deterministic

    results = [
        ToolMessage("4", tool_call_id=reply.tool_calls[0]["id"]),
        ToolMessage("a.txt", tool_call_id=reply.tool_calls[1]["id"]),
    ]
    answer = bound.invoke([HumanMessage("What is 2 + 2? Then list the files."), reply, *results])
    assert answer.content == "2 + 2 = 4\na.txt" and not answer.tool_calls


def test_scripted_model_without_tools_cannot_call_them() -> None:
    reply = ScriptedModel().invoke([HumanMessage("What is 2 + 2?")])
    assert not reply.tool_calls
    assert reply.content == "I have no tool or memory that answers: What is 2 + 2?"


async def test_scripted_model_judges_answers_against_the_tool_results() -> None:
    model = ScriptedModel()
    result = {"tool": "calculator", "args": {"expression": "2 + 2"}, "output": "4", "status": "ok"}
    good = await model.ainvoke(evaluator_messages("2 + 2?", "2 + 2 = 4", [result], []))
    bad = await model.ainvoke(evaluator_messages("2 + 2?", "probably 5", [result], []))
    assert json.loads(str(good.content)) == {
        "verdict": "done",
        "reason": "the answer quotes the results of calculator",
    }
    assert json.loads(str(bad.content)) == {
        "verdict": "retry",
        "reason": "the answer does not quote the result of calculator",
    }
