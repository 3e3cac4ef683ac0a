"""What every route of the inbox reaches: the open checkpointer, its URL, the guard, the decisions;
and the page number parameter of the lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Query
from langgraph.checkpoint.base import BaseCheckpointSaver
from starlette.requests import Request

from durable_graph.web.decisions import Decisions
from durable_graph.web.security import Guard

PageNumber = Annotated[int, Query(ge=1, description="Page number, from 1.")]


@dataclass
class Inbox:
    saver: BaseCheckpointSaver
    url: str
    guard: Guard
    decisions: Decisions


def inbox_of(request: Request) -> Inbox:
    """The inbox serving ``request`` (kept in the app's state by ``create_app``)."""
    inbox: Inbox = request.app.state.inbox
    return inbox
