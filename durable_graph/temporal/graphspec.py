"""Load a graph from ``"package.module:function"`` plus JSON keyword arguments."""

from __future__ import annotations

import importlib
import json

from langgraph.graph import StateGraph

from durable_graph.errors import InvalidGraphError
from durable_graph.temporal.models import GraphSpec, NodeOptions
from durable_graph.temporal.options import NodeOptionsError, node_options


def build(spec: GraphSpec) -> StateGraph:
    """Call the factory named by ``spec`` and check that it returned an uncompiled ``StateGraph``."""
    module_name, sep, attr = spec.factory.partition(":")
    if not sep or not module_name or not attr:
        raise InvalidGraphError(f"graph factory {spec.factory!r} is not of the form 'package.module:func'")
    if not isinstance(spec.kwargs, dict):
        raise InvalidGraphError(f"graph kwargs must be a JSON object, got {spec.kwargs!r}")
    try:
        json.dumps(spec.kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidGraphError(f"graph kwargs of {spec.factory!r} are not JSON: {exc}") from exc
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        message = f"cannot import module {module_name!r} of graph factory {spec.factory!r}: {exc}"
        raise InvalidGraphError(message) from exc
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise InvalidGraphError(f"module {module_name!r} has no {attr!r} (graph {spec.factory!r})")
        factory = getattr(factory, part)
    if not callable(factory):
        raise InvalidGraphError(f"graph factory {spec.factory!r} is not callable")
    try:
        builder = factory(**spec.kwargs)
    except TypeError as exc:
        message = f"graph factory {spec.factory!r} rejected kwargs {spec.kwargs!r}: {exc}"
        raise InvalidGraphError(message) from exc
    if not isinstance(builder, StateGraph):
        raise InvalidGraphError(
            f"graph factory {spec.factory!r} returned {type(builder).__name__}, "
            "expected an uncompiled langgraph StateGraph"
        )
    options_by_node(builder)  # reject malformed node metadata before anything runs
    return builder


def options_by_node(builder: StateGraph, defaults: NodeOptions | None = None) -> dict[str, NodeOptions]:
    """Each node's activity options, from ``metadata["temporal"]``."""
    defaults = defaults or NodeOptions()
    try:
        return {name: node_options(name, node.metadata, defaults) for name, node in builder.nodes.items()}
    except NodeOptionsError as exc:
        raise InvalidGraphError(str(exc)) from exc


def cache_key(spec: GraphSpec) -> str:
    return spec.factory + "|" + json.dumps(spec.kwargs, sort_keys=True)
