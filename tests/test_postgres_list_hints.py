"""A put sends only the list items its parent's list lacks, trusting what this client wrote last.
When the database no longer holds that parent (another process deleted or pruned the thread), the
server refuses the shortcut and the client sends every item: nothing may go missing."""

from __future__ import annotations

import uuid
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, create_checkpoint, empty_checkpoint

from durable_graph.checkpointers import open_checkpointer


def put_items(saver: BaseCheckpointSaver, config: RunnableConfig, items: list[str], step: int) -> Any:
    previous = saver.get_tuple(config)
    base = previous.checkpoint if previous else empty_checkpoint()
    checkpoint = create_checkpoint(base, None, step)
    version = saver.get_next_version(base["channel_versions"].get("items"), None)
    checkpoint["channel_values"] = {"items": items}
    checkpoint["channel_versions"] = {"items": version}
    return saver.put(config, checkpoint, {"step": step, "source": "loop", "parents": {}}, {"items": version})


def test_a_put_whose_parent_was_deleted_elsewhere_stores_every_item(pg_url: str) -> None:
    thread: RunnableConfig = {"configurable": {"thread_id": "hint-" + uuid.uuid4().hex, "checkpoint_ns": ""}}
    with open_checkpointer(pg_url) as writer, open_checkpointer(pg_url) as other:
        first = put_items(writer, thread, ["a", "b"], 0)
        second = put_items(writer, first, ["a", "b", "c"], 1)  # sends only "c"
        other.delete_thread(thread["configurable"]["thread_id"])  # another process
        # the writer still runs from its parent in memory, as a graph run does
        version = writer.get_next_version(None, None)
        checkpoint = create_checkpoint(empty_checkpoint(), None, 2)
        checkpoint["channel_values"] = {"items": ["a", "b", "c", "d"]}
        checkpoint["channel_versions"] = {"items": version}
        third = writer.put(
            second, checkpoint, {"step": 2, "source": "loop", "parents": {}}, {"items": version}
        )

    with open_checkpointer(pg_url) as reader:
        saved = reader.get_tuple(third)
    assert saved is not None
    assert saved.checkpoint["channel_values"]["items"] == ["a", "b", "c", "d"]
