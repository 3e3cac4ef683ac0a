"""The bundled agent of a thread, built from its run settings with durable tools.

``build_graph`` compiles it for a local run; ``agent_graph`` is the same graph uncompiled, the
factory Temporal workers import by name (``AGENT_FACTORY``).
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from durable_graph.errors import DurableGraphError
from durable_graph.runs.settings import RunSettings

AGENT_FACTORY = "durable_graph.runs.agent:agent_graph"


class ToolsSpecError(DurableGraphError, ValueError):
    """A ``--tools module:function`` spec could not be loaded."""


class WorkdirMissingError(DurableGraphError, FileNotFoundError):
    """The workdir saved with a thread does not exist where the thread is being continued."""


def load_tools(spec: str | None, workdir: str) -> list[BaseTool]:
    """The agent's tools, made durable: the demo tools, or those ``module:function`` returns for ``workdir``.

    Durable tools record their results next to the checkpoints, so a node re-run after a crash gets a
    finished call's result back instead of calling the tool again (see ``durable_graph.durable_tools``).
    """
    from durable_graph.durable_tools import durable

    return [durable(t) for t in _plain_tools(spec, workdir)]


def _plain_tools(spec: str | None, workdir: str) -> list[BaseTool]:
    """Like other app loaders, the current directory is importable, so ``mytools:make_tools`` finds
    ``./mytools.py``."""
    if spec is None:
        from durable_graph.graphs import demo_tools

        return demo_tools(workdir)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ToolsSpecError(f"--tools {spec!r} is not 'module:function' (e.g. mypkg.tools:make_tools)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise ToolsSpecError(f"--tools {spec!r}: cannot import {module_name!r}: {exc}") from exc
    except AttributeError:
        raise ToolsSpecError(f"--tools {spec!r}: module {module_name!r} has no {attr!r}") from None
    tools = list(factory(workdir))
    if not all(isinstance(t, BaseTool) for t in tools):
        raise ToolsSpecError(f"--tools {spec!r} must return a list of langchain BaseTool objects")
    return tools


def build_graph(
    settings: RunSettings, saver: BaseCheckpointSaver, *, store: Any = None, inspect_only: bool = False
) -> Pregel:
    """The compiled agent graph of a thread with these settings.

    ``inspect_only`` builds it with the offline scripted model and the demo tools (the graph's nodes
    and edges depend on neither), for reading state without the real model's package or API key, the
    thread's workdir or its tools module.
    """
    from durable_graph.graphs import build_agent, demo_tools, load_model

    if inspect_only:
        model, tools = load_model(None), demo_tools(".")
        if settings.memory and store is None:
            from langgraph.store.memory import InMemoryStore

            store = InMemoryStore()
    else:
        if not Path(settings.workdir).is_dir():
            raise WorkdirMissingError(
                f"the thread's workdir {settings.workdir!r} is not an existing directory here"
            )
        model = load_model(settings.model, base_url=settings.base_url)
        tools = load_tools(settings.tools, settings.workdir)
    graph = build_agent(model, tools, max_steps=settings.max_steps, store=store if settings.memory else None)
    return graph.compile(checkpointer=saver, store=store if settings.memory else None)


def open_graph(stack: ExitStack, url: str, saver: BaseCheckpointSaver, settings: RunSettings) -> Pregel:
    """The thread's graph for a run; with ``memory`` on, the long-term memory store at ``url`` is
    opened on ``stack`` (closed with it)."""
    store = None
    if settings.memory:
        from durable_graph.memory import open_store

        store = stack.enter_context(open_store(url))
    return build_graph(settings, saver, store=store)


def agent_graph(**settings: Any) -> StateGraph:
    """The agent of a thread, from its run settings: the graph factory Temporal workers build."""
    from durable_graph.graphs import build_agent, load_model

    s = RunSettings(**settings)
    return build_agent(
        load_model(s.model, base_url=s.base_url), load_tools(s.tools, s.workdir), max_steps=s.max_steps
    )
