"""The agent with PgVectorStore on Postgres: a second thread uses a fact only the first discovered,
through a store reopened from scratch (as another process would), with the default embedder."""

from __future__ import annotations

import uuid
from pathlib import Path

from langchain_core.runnables import RunnableConfig

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import ScriptedModel, agent_input, build_agent, demo_tools, memory_namespace
from durable_graph.memory import open_store


def config() -> RunnableConfig:
    return {"configurable": {"thread_id": uuid.uuid4().hex}}


def test_a_second_thread_recalls_what_only_the_first_discovered(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "vault.txt").write_text("shopping: apples\nThe launch code is 4417.\n")
    user = "u" + uuid.uuid4().hex[:8]

    with open_checkpointer(pg_url) as saver, open_store(pg_url) as store:
        graph = build_agent(ScriptedModel(), demo_tools(tmp_path), store=store).compile(
            checkpointer=saver, store=store
        )
        first = graph.invoke(agent_input("find the launch code in the files", user_id=user), config())
        assert "4417" in first["final_answer"]
    (tmp_path / "vault.txt").unlink()  # the fact now lives only in the first thread's memory

    with open_checkpointer(pg_url) as saver, open_store(pg_url) as store:
        assert store.search(memory_namespace(user), query="launch code")[0].value["answer"]
        graph = build_agent(ScriptedModel(), demo_tools(tmp_path), store=store).compile(
            checkpointer=saver, store=store
        )
        second = graph.invoke(agent_input("What is the launch code?", user_id=user), config())

    assert second["evaluation"]["verdict"] == "done"
    assert "The launch code is 4417." in second["final_answer"]
    assert second["tool_results"] == []


async def test_async_agent_recalls_across_threads(pg_url: str, tmp_path: Path) -> None:
    (tmp_path / "vault.txt").write_text("The vault combination is 31-7-22.\n")
    user = "u" + uuid.uuid4().hex[:8]
    async with open_checkpointer(pg_url) as saver, open_store(pg_url) as store:
        graph = build_agent(ScriptedModel(), demo_tools(tmp_path), store=store).compile(
            checkpointer=saver, store=store
        )
        first = await graph.ainvoke(
            agent_input("find the vault combination in the files", user_id=user), config()
        )
        assert "31-7-22" in first["final_answer"]
        (tmp_path / "vault.txt").unlink()
        second = await graph.ainvoke(agent_input("What is the vault combination?", user_id=user), config())
    assert "31-7-22" in second["final_answer"]
    assert second["tool_results"] == []
