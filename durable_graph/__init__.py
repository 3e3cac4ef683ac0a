"""durable-graph: LangGraph agents that never lose their work.

The layers, from what a user runs down to SQL (``docs/architecture.md`` has the whole map):

- front ends: ``cli`` (the ``durable-graph`` command), ``web`` (the inbox of ``durable-graph
  serve``), ``server`` (the Agent Server's entry points for ``langgraph.json``) and ``temporal``
  (nodes as activities);
- ``runs``: running, answering and inspecting stored agent threads, for every front end;
- ``graphs``: the bundled agent (plan / tool / evaluate), its state, models and tools;
- storage: ``checkpointers`` (one package or module per backend) and ``memory`` (the pgvector store).

The modules at this level are the ones several layers share, so each sits where all of them import
it from: ``urls`` (which backend a URL names), ``embedded`` (the embedded Postgres behind
``embedded://``), ``leases`` (one runner per thread), ``durable_tools`` (tools that run once),
``migrations`` (versioned Postgres schemas of the checkpointer, the store and the tool log),
``backoff`` (retrying while a server restarts), ``processes`` (clean stops on SIGTERM and
children that die with their parent), ``lifecycle`` (``with`` and ``async with`` for every
backend object), ``encryption`` (the keys of encryption at rest, used by the codec and the tool
log) and ``errors``; ``reencrypt`` rewrites stored threads under the newest key for the CLI.
"""

__version__ = "0.1.0"
