"""Running stored agent threads, for every front end: the CLI, the web inbox, Agent Server helpers.

- ``settings``: ``RunSettings`` (how a thread's agent is built, saved in its checkpoints),
  ``thread_config`` and ``new_thread_id``;
- ``agent``: the bundled agent of a thread, built from its settings with durable tools;
- ``runner``: running a thread here one node at a time, its outcome, answering an approval;
- ``placement``: where a thread runs (here, or on a Temporal workflow), recorded with the thread;
- ``answers``: ``start_thread`` and ``continue_thread``, which answer or continue a thread wherever
  it runs (every front end goes through them);
- ``status``: where stored threads stand, read from their latest checkpoints;
- ``history``: the timeline of a thread's checkpoints (which node wrote each, what it changed);
- ``lease``: holding a thread while running it, and asking whether a runner holds it;
- ``describe``: state values as JSON types, one-line summaries of updates and messages;
- ``fork``: time travel onto a new thread.
"""

from durable_graph.runs.settings import RunSettings, new_thread_id, thread_config

__all__ = ["RunSettings", "new_thread_id", "thread_config"]
