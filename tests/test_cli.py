"""The ``durable-graph`` CLI, invoked in-process, on real SQLite files and a real Postgres."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.types import Command
from typer.testing import CliRunner, Result

from durable_graph.checkpointers import open_checkpointer
from durable_graph.cli import app
from durable_graph.runs import RunSettings, thread_config
from durable_graph.runs.agent import build_graph

REPORT_TASK = "search for apples in my files and write a report"
MATH_TASK = "what is 12 * (3 + 4)?"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("Budget: 42 apples\nThe launch is on Friday.\n")
    (work / "todo.md").write_text("- buy pears\n- count apples\n")
    return work


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def thread_of(result: Result) -> str:
    first = result.stdout.splitlines()[0]
    assert first.startswith("thread: "), result.stdout
    return first.removeprefix("thread: ")


def statuses(url: str) -> dict[str, str]:
    result = cli("threads", "--json", "--url", url)
    assert result.exit_code == 0, result.output
    return {t["thread_id"]: t["status"] for t in json.loads(result.stdout)}


def shown(url: str, thread_id: str) -> dict:
    result = cli("show", thread_id, "--json", "--url", url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def history(url: str, thread_id: str) -> list[dict]:
    result = cli("history", thread_id, "--json", "--url", url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_run_prints_thread_id_first_then_nodes_then_answer(url: str, workdir: Path) -> None:
    result = cli("run", MATH_TASK, "--url", url, "--workdir", str(workdir))
    assert result.exit_code == 0, result.output
    thread_id = thread_of(result)
    lines = result.stdout.splitlines()
    assert any("plan" in line and "calculator" in line for line in lines[1:3])
    assert any("tool" in line and "84" in line for line in lines)
    assert "final answer: 12 * (3 + 4) = 84" in result.stdout
    assert statuses(url)[thread_id] == "done"
    state = shown(url, thread_id)
    assert state["status"] == "done"
    assert state["final_answer"] == "12 * (3 + 4) = 84"
    assert state["settings"]["workdir"] == str(workdir.resolve())


def test_run_with_chosen_thread_id_and_json_events(url: str, workdir: Path) -> None:
    result = cli("run", MATH_TASK, "--thread", "math-1", "--json", "--url", url, "--workdir", str(workdir))
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0] == {"event": "thread", "thread": "math-1"}
    assert [e["node"] for e in events if e["event"] == "node"][:2] == ["plan", "tool"]
    assert events[-1]["event"] == "end"
    assert events[-1]["status"] == "done"
    assert events[-1]["final_answer"] == "12 * (3 + 4) = 84"
    # a finished thread may take a new task; an unfinished one may not
    again = cli("run", "what is 2 + 3?", "--thread", "math-1", "--url", url, "--workdir", str(workdir))
    assert again.exit_code == 0, again.output
    assert "2 + 3 = 5" in again.stdout


def test_approval_flow_in_process(url: str, workdir: Path) -> None:
    result = cli("run", REPORT_TASK, "--url", url, "--workdir", str(workdir))
    assert result.exit_code == 4, result.output
    thread_id = thread_of(result)
    assert "waiting for approval: write_report" in result.stdout
    assert f"durable-graph approve {thread_id} --url" in result.stdout
    assert f"durable-graph reject {thread_id} --reason" in result.stdout
    assert statuses(url)[thread_id] == "interrupted"
    state = shown(url, thread_id)
    assert state["status"] == "interrupted"
    assert state["interrupts"][0]["type"] == "approval"
    assert state["interrupts"][0]["tool"] == "write_report"
    assert state["commands"]["approve"].startswith(f"durable-graph approve {thread_id}")
    before = history(url, thread_id)

    # answering wrongly changes nothing
    bad_json = cli("edit", thread_id, "--args", "{not json", "--url", url)
    assert bad_json.exit_code == 2
    assert "--args is not valid JSON" in bad_json.stderr
    not_object = cli("edit", thread_id, "--args", "[1, 2]", "--url", url)
    assert not_object.exit_code == 2
    assert "must be a JSON object" in not_object.stderr
    wrong_shape = cli("edit", thread_id, "--args", '{"title": 3}', "--url", url)
    assert wrong_shape.exit_code == 2
    assert "do not fit its schema" in wrong_shape.stderr
    unknown_arg = cli(
        "edit", thread_id, "--args", '{"path": "x", "title": "t", "content": "c"}', "--url", url
    )
    assert unknown_arg.exit_code == 2
    assert "unknown names ['path']" in unknown_arg.stderr
    no_reason = cli("reject", thread_id, "--reason", " ", "--url", url)
    assert no_reason.exit_code == 2
    taken = cli("run", "what is 1 + 1?", "--thread", thread_id, "--url", url)
    assert taken.exit_code == 4
    assert "already exists and is interrupted" in taken.stderr
    resumed = cli("resume", thread_id, "--url", url)
    assert resumed.exit_code == 4
    assert "waiting for approval" in resumed.stderr
    assert history(url, thread_id) == before
    assert statuses(url)[thread_id] == "interrupted"

    edited = cli("edit", thread_id, "--args", '{"title": "Apples", "content": "42 apples"}', "--url", url)
    assert edited.exit_code == 0, edited.output
    assert thread_of(edited) == thread_id
    assert (workdir / "reports" / "apples.md").read_text() == "# Apples\n\n42 apples\n"
    assert statuses(url)[thread_id] == "done"
    again = cli("approve", thread_id, "--url", url)
    assert again.exit_code == 2
    assert "no pending approval" in again.stderr
    done = cli("resume", thread_id, "--url", url)
    assert done.exit_code == 2
    assert "already done" in done.stderr


def test_show_and_history_json(url: str, workdir: Path) -> None:
    result = cli("run", REPORT_TASK, "--url", url, "--workdir", str(workdir))
    thread_id = thread_of(result)
    state = shown(url, thread_id)
    assert state["task"] == REPORT_TASK
    assert state["step"] == 2
    assert state["plan"] and "write_report" in state["plan"][0]
    assert state["messages"][-1]["tool_calls"][0]["name"] == "write_report"
    assert state["next"] == ["tool"]
    rows = history(url, thread_id)
    assert [r["source"] for r in rows[:2]] == ["input", "loop"]
    assert [r["node"] for r in rows[2:]] == ["plan", "tool", "plan"]
    assert rows[-1]["next"] == ["tool"]
    assert rows[-1]["interrupts"][0]["tool"] == "write_report"
    assert [r["step"] for r in rows] == list(range(-1, len(rows) - 1))
    text = cli("history", thread_id, "--url", url)
    assert text.exit_code == 0
    assert rows[-1]["checkpoint_id"] in text.stdout
    latest = cli("history", thread_id, "--limit", "2", "--json", "--url", url)
    assert json.loads(latest.stdout) == rows[-2:]
    human = cli("show", thread_id, "--url", url)
    assert human.exit_code == 0
    assert "interrupted" in human.stdout and REPORT_TASK in human.stdout


def test_fork_leaves_the_original_thread_unchanged(url: str, workdir: Path) -> None:
    result = cli("run", REPORT_TASK, "--url", url, "--workdir", str(workdir))
    original = thread_of(result)
    assert cli("reject", original, "--reason", "not today", "--url", url).exit_code == 0
    rows_before = history(url, original)
    state_before = shown(url, original)
    assert "not today" in state_before["final_answer"]
    # the checkpoint before the approval: the fork asks again, and approving it writes the report
    waiting = next(r for r in rows_before if r["next"] == ["tool"] and r["interrupts"])
    forked = cli(
        "fork", original, "--checkpoint", waiting["checkpoint_id"], "--thread", "forked", "--url", url
    )
    assert forked.exit_code == 4, forked.output
    assert thread_of(forked) == "forked"
    assert cli("approve", "forked", "--url", url).exit_code == 0
    fork_state = shown(url, "forked")
    assert fork_state["status"] == "done"
    assert "wrote reports/" in fork_state["final_answer"]
    assert list((workdir / "reports").iterdir())
    fork_rows = history(url, "forked")
    assert [r["checkpoint_id"] for r in fork_rows[: rows_before.index(waiting) + 1]] == [
        r["checkpoint_id"] for r in rows_before[: rows_before.index(waiting) + 1]
    ]
    assert history(url, original) == rows_before
    assert shown(url, original) == state_before
    taken = cli(
        "fork", original, "--checkpoint", waiting["checkpoint_id"], "--thread", "forked", "--url", url
    )
    assert taken.exit_code == 2
    assert "already exists" in taken.stderr
    missing = cli("fork", original, "--checkpoint", "no-such-checkpoint", "--url", url)
    assert missing.exit_code == 3
    assert "no checkpoint 'no-such-checkpoint'" in missing.stderr


def test_unknown_thread_exits_3(url: str) -> None:
    for args in (
        ["show", "nope"],
        ["history", "nope"],
        ["resume", "nope"],
        ["approve", "nope"],
        ["edit", "nope", "--args", "{}"],
        ["reject", "nope", "--reason", "no"],
        ["fork", "nope", "--checkpoint", "x"],
    ):
        result = cli(*args, "--url", url)
        assert result.exit_code == 3, (args, result.output)
        assert "thread 'nope' does not exist" in result.stderr


def test_failed_run_is_listed_and_reported(url: str, workdir: Path) -> None:
    result = cli("run", REPORT_TASK, "--url", url, "--workdir", str(workdir))
    thread_id = thread_of(result)
    # a program answers the approval with a malformed value through the library: the tool node fails
    with open_checkpointer(url) as saver:
        graph = build_graph(RunSettings(workdir=str(workdir)), saver)
        with pytest.raises(ValueError, match="unknown action"):
            graph.invoke(Command(resume={"action": "maybe"}), thread_config(thread_id))
    assert statuses(url)[thread_id] == "failed"
    state = shown(url, thread_id)
    assert state["status"] == "failed"
    assert state["failed_node"] == "tool"
    assert "unknown action 'maybe'" in state["error"]
    listed = cli("threads", "--status", "failed", "--url", url)
    assert thread_id in listed.stdout


def test_usage_errors_exit_2(url: str, tmp_path: Path) -> None:
    assert cli("threads", "--url", "nosuch://x").exit_code == 2
    bad_url = cli("threads", "--url", "nosuch://x")
    assert "unknown backend 'nosuch'" in bad_url.stderr
    assert cli("threads", "--status", "sleeping", "--url", url).exit_code == 2
    missing = cli("run", "x", "--workdir", str(tmp_path / "missing"), "--url", url)
    assert missing.exit_code == 2
    tools = cli("run", "x", "--tools", "no_such_module:tools", "--url", url)
    assert tools.exit_code == 2
    assert "cannot import 'no_such_module'" in tools.stderr
    assert cli("prune", "--url", url).exit_code == 2
    assert cli("prune", "--older-than", "soon", "--url", url).exit_code == 2
    assert cli("prune", "--keep", "0", "--url", url).exit_code == 2


def test_backend_unavailable_exits_5(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = cli("threads", "--url", f"sqlite:///{blocker / 'x.db'}")
    assert result.exit_code == 5, result.output
    assert "backend unavailable" in result.stderr
    refused = cli("threads", "--url", "postgresql://nobody@127.0.0.1:1/nothing")
    assert refused.exit_code == 5, refused.output
    assert "backend unavailable" in refused.stderr


def test_global_url_option_and_help(url: str, workdir: Path) -> None:
    result = CliRunner().invoke(app, ["--url", url, "run", MATH_TASK, "--workdir", str(workdir)])
    assert result.exit_code == 0, result.output
    assert thread_of(result) in statuses(url)
    help_text = cli("--help").stdout
    assert "Exit codes" in help_text
    assert "4 waiting for approval" in help_text


def test_memory_is_kept_with_the_run_settings(url: str, workdir: Path) -> None:
    args = ["--memory", "--user", "ann", "--url", url, "--workdir", str(workdir)]
    if url.startswith("sqlite"):
        refused = cli("run", MATH_TASK, *args)
        assert refused.exit_code == 2
        assert "--memory needs a Postgres URL" in refused.stderr
        return
    result = cli("run", REPORT_TASK, *args)
    assert result.exit_code == 4, result.output
    thread_id = thread_of(result)
    assert "recall" in result.stdout.splitlines()[1]
    assert shown(url, thread_id)["settings"]["memory"] is True
    approved = cli("approve", thread_id, "--url", url)
    assert approved.exit_code == 0, approved.output
    assert "remember" in approved.stdout
    assert [r["node"] for r in history(url, thread_id)][2] == "recall"
