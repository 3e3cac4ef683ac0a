"""``ScriptedModel``: a deterministic OFFLINE FAKE chat model for demos and tests.

It is not an LLM. It reads the task with a few regular expressions, calls the bundled demo tools
through the ordinary tool-calling path (``AIMessage.tool_calls`` -> tool node -> ``ToolMessage``),
answers by quoting the tool results it got back, and, asked as the evaluator, checks that the
answer quotes those results. Everything it says is derived from the task, the tool results and the
recalled memories, so the same conversation always gets the same reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from durable_graph.graphs import calculator
from durable_graph.graphs.approval import REJECTED
from durable_graph.graphs.prompts import current_run, is_evaluator_request, memory_lines, one_line, text_of

Call = tuple[str, dict[str, Any]]

_ARITHMETIC = re.compile(r"[-(\d][\d\s+\-*/%().]*[\d)]")
_SEARCH = re.compile(
    r"\b(?:find|search(?:\s+for)?|look\s+for|grep(?:\s+for)?)\s+(.+?)\s+in\s+(?:the\s+|my\s+)?"
    r"(?:files|workdir|work\s+dir|notes|documents)\b",
    re.IGNORECASE,
)
_READ = re.compile(r"\bread\s+(?:the\s+)?(?:file\s+)?[`'\"]?([\w./-]+\.\w+)", re.IGNORECASE)
_LIST = re.compile(r"\blist\b.*\bfiles\b", re.IGNORECASE)
_REPORT = re.compile(r"\breport\b", re.IGNORECASE)
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "did", "does", "find", "for", "from", "how", "in", "is", "it", "me", "of")
    + ("on", "the", "to", "was", "what", "when", "where", "which", "who", "with", "you", "your", "tell")
    + ("give", "show", "search", "files", "answer", "task")
)


class ScriptedModel(BaseChatModel):
    """A deterministic offline FAKE chat model (no LLM): plans demo-tool calls from the task text.

    - arithmetic in the task (``12 * (3 + 4)``) -> ``calculator``;
    - "find / search X in files" -> ``search_files``; "list files" -> ``list_files``;
      "read notes.txt" -> ``read_file``;
    - "... report" -> ``write_report`` with the findings, once the other results are in;
    - no tool fits but a recalled memory shares the task's words -> answers from that memory.

    With every result in, it answers by quoting them. As the evaluator it replies "done" when the
    answer quotes every successful result (or a recalled memory), else "retry" saying what is missing.
    """

    @property
    def _llm_type(self) -> str:
        return "scripted-fake"

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if is_evaluator_request(messages):
            reply = AIMessage(content=json.dumps(judge(json.loads(text_of(messages[-1])))))
        else:
            tools = {t["function"]["name"] for t in kwargs.get("tools") or []}
            reply = plan_turn(messages, tools)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def plan_turn(messages: Sequence[BaseMessage], tools: set[str]) -> AIMessage:
    """The next planner reply: tool calls still needed, else an answer quoting the results."""
    run = current_run(messages)
    task = text_of(run[0]) if run and isinstance(run[0], HumanMessage) else ""
    called = {_key(c["name"], c["args"]) for m in run if isinstance(m, AIMessage) for c in m.tool_calls}
    results = _results(run)

    needed = [c for c in _lookups(task, tools) if _key(*c) not in called]
    wants_report = _REPORT.search(task) and "write_report" in tools
    if not needed and wants_report and not any(name == "write_report" for name, _ in called):
        findings = "\n".join(_quote(r) for r in results) or f"No findings for: {task}"
        needed = [("write_report", {"title": f"Report: {task[:60]}", "content": findings})]
    if needed:
        turn = sum(isinstance(m, AIMessage) for m in messages)
        calls = [
            {"name": n, "args": a, "id": f"call_{turn}_{i}_{n}", "type": "tool_call"}
            for i, (n, a) in enumerate(needed)
        ]
        return AIMessage(content="", tool_calls=calls)

    if results:
        return AIMessage(content="\n".join(_quote(r) for r in results))
    system = text_of(messages[0]) if messages and isinstance(messages[0], SystemMessage) else ""
    memory = _best_memory(task, memory_lines(system))
    if memory:
        return AIMessage(content=f"From memory: {memory}")
    return AIMessage(content=f"I have no tool or memory that answers: {task}")


def judge(request: dict[str, Any]) -> dict[str, str]:
    """The evaluator's verdict on ``request`` (see ``prompts.evaluator_messages``)."""
    answer, results = request.get("answer", ""), request.get("tool_results", [])
    for r in results:
        if r.get("status") == "error":
            return {"verdict": "retry", "reason": f"{r['tool']} failed: {r['output']}"}
        if r.get("tool") == "search_files" and str(r.get("output", "")).startswith("no matches"):
            return {"verdict": "retry", "reason": f"search_files found nothing: {r['output']}"}
    if results:
        missing = [r["tool"] for r in results if _first_line(r.get("output")) not in answer]
        if missing:
            return {
                "verdict": "retry",
                "reason": f"the answer does not quote the result of {', '.join(missing)}",
            }
        return {"verdict": "done", "reason": "the answer quotes the results of " + _names(results)}
    if any(one_line(m) in one_line(answer) for m in request.get("memories", [])):
        return {"verdict": "done", "reason": "the answer comes from a memory of an earlier run"}
    return {"verdict": "retry", "reason": "no tool result or memory supports the answer"}


def _lookups(task: str, tools: set[str]) -> list[Call]:
    """The tool calls the task asks for that need no earlier result."""
    calls: list[Call] = []
    expression = _arithmetic(task)
    if expression and "calculator" in tools:
        calls.append(("calculator", {"expression": expression}))
    if (m := _SEARCH.search(task)) and "search_files" in tools:
        pattern = re.sub(r"^(?:the|a|an)\s+", "", m.group(1).strip(" '\"`"), flags=re.IGNORECASE)
        calls.append(("search_files", {"pattern": pattern.strip(" '\"`")}))
    if _LIST.search(task) and "list_files" in tools:
        calls.append(("list_files", {}))
    if (m := _READ.search(task)) and "read_file" in tools:
        calls.append(("read_file", {"path": m.group(1)}))
    return calls


def _arithmetic(task: str) -> str | None:
    """The longest arithmetic expression (two numbers or more) in the task."""
    found = []
    for m in _ARITHMETIC.finditer(task):
        text = m.group(0).strip()
        if re.search(r"\d\s*(?:[-+*/%]|\*\*|//)\s*[-(\d]", text):
            try:
                calculator.evaluate(text)
            except ValueError:
                continue  # not arithmetic; a division by zero still is, and the tool reports it
            except ArithmeticError:
                pass
            found.append(text)
    return max(found, key=len) if found else None


def _first_line(output: Any) -> str:
    return (str(output or "").splitlines() or [""])[0]


def _results(run: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    calls = {c["id"]: c for m in run if isinstance(m, AIMessage) for c in m.tool_calls}
    out = []
    for m in run:
        if isinstance(m, ToolMessage) and m.tool_call_id in calls:
            call = calls[m.tool_call_id]
            out.append({"tool": call["name"], "args": call["args"], "output": text_of(m), "status": m.status})
    return out


def _quote(result: dict[str, Any]) -> str:
    tool, args, output = result["tool"], result["args"], result["output"]
    if result["status"] == "error":
        return f"{tool} was not run: {output}" if output.startswith(REJECTED) else f"{tool} failed: {output}"
    if tool == "calculator":
        return f"{args.get('expression')} = {output}"
    if tool == "search_files":
        return f"Search for {args.get('pattern')!r}:\n{output}"
    if tool == "read_file":
        return f"Contents of {args.get('path')}:\n{output}"
    return output


def _best_memory(task: str, memories: list[str]) -> str | None:
    """The memory sharing the most content words with the task (at least two), if any."""
    words = _content_words(task)
    scored = [(len(words & _content_words(m)), -i, m) for i, m in enumerate(memories)]
    best = max(scored, default=None)
    return best[2] if best and best[0] >= min(2, len(words)) and best[0] > 0 else None


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS and len(w) > 1}


def _key(name: str, args: dict[str, Any]) -> tuple[str, str]:
    return name, json.dumps(args, sort_keys=True)


def _names(results: list[dict[str, Any]]) -> str:
    return ", ".join(dict.fromkeys(r["tool"] for r in results))
