"""Tools that run once: a tool's result is recorded, and a node re-run after a crash gets it back.

``durable_tool(tool)`` (or ``@durable_tool`` above ``@tool``-style functions) wraps a LangChain tool.
Inside a graph run, each call gets a key: the thread id, checkpoint namespace and task id of the
running node (from the LangGraph config) and the tool call id (or, for a call made without one, the
tool name and a hash of its arguments). Before running the tool it looks the key up in a
``ToolResultLog``; a recorded result is returned without calling the tool again. After the tool
returns, its result is recorded. LangGraph gives a task the same id when it re-runs from the same
checkpoint, so the key survives a crash, a resume in another process, and an interrupt.

What that guarantees (see docs/reliability.md): a tool whose result was recorded never runs again
for that key. A crash after the tool's side effect but before its result was recorded makes the
tool run again on resume; ``attempts`` in the log counts such runs, so they are visible.

The log lives in the checkpointer's database, chosen by the same URL: ``open_tool_log(url)``. A
durable tool finds its log, in this order: the ``log`` given to ``durable_tool``; the config entry
``configurable[TOOL_LOG_KEY]``; else a log opened on the graph's own checkpointer.
"""

from durable_graph.durable_tools.keys import ToolCallKey, call_key, idempotency_key
from durable_graph.durable_tools.logs import (
    MemoryToolLog,
    PostgresToolLog,
    Recorded,
    SqliteToolLog,
    ToolRecord,
    ToolResultLog,
    open_tool_log,
    tool_log_for,
)
from durable_graph.durable_tools.wrapper import TOOL_LOG_KEY, DurableTool, durable, durable_tool

__all__ = [
    "TOOL_LOG_KEY",
    "DurableTool",
    "MemoryToolLog",
    "PostgresToolLog",
    "Recorded",
    "SqliteToolLog",
    "ToolCallKey",
    "ToolRecord",
    "ToolResultLog",
    "call_key",
    "durable",
    "durable_tool",
    "idempotency_key",
    "open_tool_log",
    "tool_log_for",
]
