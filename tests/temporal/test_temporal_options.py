"""Node metadata -> activity options, and the errors that name what is wrong."""

from __future__ import annotations

from datetime import timedelta

import pytest
from langgraph.graph import StateGraph
from temporalio.common import RetryPolicy

from durable_graph.errors import InvalidGraphError, TemporalUnavailableError
from durable_graph.temporal.devserver import dev_server, temporal_binary
from durable_graph.temporal.graphspec import options_by_node
from durable_graph.temporal.models import NodeOptions, RetryOptions
from durable_graph.temporal.options import NodeOptionsError, activity_kwargs, merge, node_options
from tests.temporal.graphs import LogState


def test_node_metadata_sets_timeouts_and_retries() -> None:
    metadata = {
        "temporal": {
            "start_to_close_timeout": 60,
            "heartbeat_timeout": timedelta(seconds=5),
            "retry": {
                "maximum_attempts": 3,
                "initial_interval": 2,
                "non_retryable_error_types": ["ValueError"],
            },
        }
    }
    options = node_options("tool", metadata, NodeOptions())
    kwargs = activity_kwargs(options)
    assert kwargs["start_to_close_timeout"] == timedelta(seconds=60)
    assert kwargs["heartbeat_timeout"] == timedelta(seconds=5)
    assert kwargs["retry_policy"] == RetryPolicy(
        maximum_attempts=3,
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=60),
        non_retryable_error_types=["ValueError"],
    )
    assert node_options("plan", {"other": 1}, NodeOptions()) == NodeOptions()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"start_to_close": 5}, r"node 'tool': unknown option\(s\) \['start_to_close'\]"),
        ({"start_to_close_timeout": -1}, "must be a positive number of seconds"),
        ({"start_to_close_timeout": None}, "must be a positive number of seconds"),
        ({"retry": {"attempts": 3}}, r"unknown retry option\(s\) \['attempts'\]"),
        ({"retry": {"maximum_attempts": "3"}}, "maximum_attempts must be an int"),
        ({"retry": {"initial_interval": 5, "maximum_interval": 1}}, "maximum_interval is shorter"),
        ("60", "metadata\\['temporal'\\] must be a dict"),
    ],
)
def test_malformed_node_metadata_is_named(raw: object, message: str) -> None:
    with pytest.raises(NodeOptionsError, match=message):
        node_options("tool", {"temporal": raw}, NodeOptions())


def test_graph_with_bad_metadata_is_refused() -> None:
    builder = StateGraph(LogState)
    builder.add_node("tool", lambda s: s, metadata={"temporal": {"retry": {"bogus": 1}}})
    with pytest.raises(InvalidGraphError, match="node 'tool'"):
        options_by_node(builder)


def test_a_superstep_of_several_nodes_gets_the_most_generous_options() -> None:
    a = NodeOptions(start_to_close_timeout=10, heartbeat_timeout=None, retry=RetryOptions(maximum_attempts=2))
    b = NodeOptions(start_to_close_timeout=60, heartbeat_timeout=5, retry=RetryOptions(maximum_attempts=5))
    merged = merge([a, b])
    assert merged.start_to_close_timeout == 60 and merged.heartbeat_timeout == 5
    assert merged.retry.maximum_attempts == 5
    assert merge([a, NodeOptions(retry=RetryOptions(maximum_attempts=0))]).retry.maximum_attempts == 0


def test_dev_server_errors_are_clear(temporal_address: str) -> None:
    assert temporal_binary().is_file()
    port = int(temporal_address.rsplit(":", 1)[1])
    with pytest.raises(TemporalUnavailableError, match=f"port {port} .* already in use"), dev_server(port):
        pass
