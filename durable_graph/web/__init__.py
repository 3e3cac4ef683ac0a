"""The web inbox served by ``durable-graph serve``: approve, edit or reject waiting tool calls.

- ``app``: ``create_app(saver, url=..., token=...)``, the ASGI app, its error pages and headers;
- ``pages``: the HTML pages and their forms; ``api``: the same as JSON under ``/api``;
- ``views``: what the pages and the API show, as plain data;
- ``decisions``: answering a thread and continuing its run in the background, under its lease;
- ``security``: the token, browser sessions, cross-site request checks;
- ``templates/``, ``static/``: the Jinja2 templates, the stylesheet and a few lines of script.

Needs the ``web`` extra (FastAPI, Jinja2, uvicorn). See ``docs/inbox.md``.
"""

from durable_graph.web.app import create_app

__all__ = ["create_app"]
