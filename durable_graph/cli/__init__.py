"""The ``durable-graph`` command: run agent threads that survive crashes, inspect, answer and fork them.

One module per group of commands, over the front-end-free ``durable_graph.runs``:

- ``commands``: the Typer app and ``main`` (the console script), registering every command;
- ``run``: ``run``, ``resume``, ``approve``, ``edit``, ``reject``, ``fork``;
- ``inspect``: ``threads``, ``show``, ``history``, ``prune``;
- ``temporal``: ``worker``, ``dev-server`` and the ``--temporal`` option of the run commands;
- ``common``: exit codes, shared options, error handling; ``output``: how results are printed.

Every command takes ``--url`` (default ``$DURABLE_GRAPH_URL``, else ``embedded://``). See ``docs/cli.md``.
"""

from durable_graph.cli.commands import app, main

__all__ = ["app", "main"]
