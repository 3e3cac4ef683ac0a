"""durable-graph: LangGraph agents that never lose their work."""

__version__ = "0.1.0"
