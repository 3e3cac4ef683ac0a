"""How a thread's agent is built, saved with the thread: ``RunSettings``, and the config that runs it.

The run settings of a thread (model spec, base URL, workdir, max steps, tools, memory) are kept in
the metadata of every checkpoint the thread writes: they are passed as ``config["metadata"]`` and
LangGraph copies scalar metadata of the config into each checkpoint (keys ``dg_model``,
``dg_base_url``, ``dg_workdir``, ``dg_max_steps``, ``dg_tools``, ``dg_memory``). Any process that
reaches the same database can therefore rebuild the same graph from the latest checkpoint alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig

_PREFIX = "dg_"


@dataclass(frozen=True)
class RunSettings:
    """How a thread's graph is built; saved with every checkpoint of the thread."""

    model: str | None = None
    """Model spec for ``load_model`` ("provider:name"); None runs the offline scripted model."""
    base_url: str | None = None
    workdir: str = "."
    max_steps: int = 8
    tools: str | None = None
    """``module:function`` returning the agent's tools for a workdir; None: the bundled demo tools."""
    memory: bool = False
    """Whether the graph has the long-term memory store (``recall``/``remember`` nodes)."""

    def to_metadata(self) -> dict[str, str | int | bool]:
        """The settings as flat scalar checkpoint metadata (None values are left out)."""
        return {_PREFIX + k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any] | None) -> RunSettings:
        """The settings saved in checkpoint metadata; defaults for whatever is missing."""
        md = metadata or {}
        max_steps = md.get(_PREFIX + "max_steps")
        return cls(
            model=_str_or_none(md.get(_PREFIX + "model")),
            base_url=_str_or_none(md.get(_PREFIX + "base_url")),
            workdir=str(md.get(_PREFIX + "workdir") or "."),
            max_steps=max_steps if isinstance(max_steps, int) and max_steps > 0 else cls.max_steps,
            tools=_str_or_none(md.get(_PREFIX + "tools")),
            memory=bool(md.get(_PREFIX + "memory", False)),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def new_thread_id() -> str:
    """A fresh, short, unique thread id."""
    return uuid.uuid4().hex[:12]


def thread_config(thread_id: str, settings: RunSettings | None = None) -> RunnableConfig:
    """The config that runs ``thread_id``; with ``settings`` they are saved in every checkpoint."""
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if settings is not None:
        config["metadata"] = settings.to_metadata()
    return config
