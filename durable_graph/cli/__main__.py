"""``python -m durable_graph.cli``: the ``durable-graph`` command."""

from durable_graph.cli.commands import main

main()
