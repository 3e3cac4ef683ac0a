"""``durable_tool``: a LangChain tool whose recorded result is returned instead of running it again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from langchain_core.tools import tool as make_tool
from pydantic import ConfigDict

from durable_graph.durable_tools.keys import call_key, current_call
from durable_graph.durable_tools.logs import ToolResultLog, tool_log_for

TOOL_LOG_KEY = "durable_graph_tool_log"
"""``config["configurable"]`` entry that names the ``ToolResultLog`` durable tools use."""

_CHECKPOINTER_KEY = "__pregel_checkpointer"  # langgraph._internal._constants.CONFIG_KEY_CHECKPOINTER


def _recordable(output: Any) -> bool:
    # A tool error turned into a message (``handle_tool_error``) is not a result to keep: a re-run
    # of the node should try the tool again.
    return not (isinstance(output, ToolMessage) and output.status == "error")


class DurableTool(BaseTool):
    """A tool whose result, once recorded for a call, is returned instead of running it again."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    log: ToolResultLog | None = None

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("call a durable tool with invoke() or ainvoke()")

    def _log(self, config: RunnableConfig) -> ToolResultLog:
        if self.log is not None:
            return self.log
        configurable = config.get("configurable") or {}
        log = configurable.get(TOOL_LOG_KEY)
        if isinstance(log, ToolResultLog):
            return log
        saver = configurable.get(_CHECKPOINTER_KEY)
        if saver is None:
            raise RuntimeError(
                f"durable tool {self.name!r} has no result log: compile the graph with a checkpointer, "
                f"or pass durable_tool(..., log=...) or configurable[{TOOL_LOG_KEY!r}]"
            )
        return tool_log_for(saver)

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        key = call_key(config, self.name, input)
        if key is None:  # outside a graph run there is nothing to key the call on
            return self.inner.invoke(input, config, **kwargs)
        log = self._log(config)
        found = log.begin(key, self.name)
        if found.done:
            return log.codec.loads(found.type or "", found.data, thread_id=key.thread_id, checkpoint_id=None)
        token = current_call.set(key)
        try:
            output = self.inner.invoke(input, config, **kwargs)
        finally:
            current_call.reset(token)
        if _recordable(output):
            log.finish(key, *log.codec.dumps(output))
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        key = call_key(config, self.name, input)
        if key is None:
            return await self.inner.ainvoke(input, config, **kwargs)
        log = self._log(config)
        found = await log.abegin(key, self.name)
        if found.done:
            return log.codec.loads(found.type or "", found.data, thread_id=key.thread_id, checkpoint_id=None)
        token = current_call.set(key)
        try:
            output = await self.inner.ainvoke(input, config, **kwargs)
        finally:
            current_call.reset(token)
        if _recordable(output):
            await log.afinish(key, *log.codec.dumps(output))
        return output


def durable(tool: BaseTool | Callable[..., Any], *, log: ToolResultLog | None = None) -> DurableTool:
    """``tool`` (a LangChain tool, or a function that ``@tool`` can wrap) made durable."""
    inner = tool if isinstance(tool, BaseTool) else make_tool(tool)
    if isinstance(inner, DurableTool):
        return inner
    return DurableTool(
        name=inner.name,
        description=inner.description,
        args_schema=inner.args_schema,
        return_direct=inner.return_direct,
        response_format=inner.response_format,
        metadata=inner.metadata,  # e.g. ``requires_approval`` marks
        tags=inner.tags,
        inner=inner,
        log=log,
    )


def durable_tool(
    tool: BaseTool | Callable[..., Any] | None = None, *, log: ToolResultLog | None = None
) -> Any:
    """Decorator form of ``durable``: ``@durable_tool`` or ``@durable_tool(log=...)``, placed above
    ``@tool`` or directly on a function."""
    if tool is None:
        return lambda t: durable(t, log=log)
    return durable(tool, log=log)
