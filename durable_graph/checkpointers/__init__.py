"""Checkpointers: LangGraph ``BaseCheckpointSaver`` implementations chosen by URL."""

from durable_graph.checkpointers.factory import Openable, open_checkpointer

__all__ = ["Openable", "open_checkpointer"]
