"""Encode graph inputs and resume values for the trip through Temporal.

Plain JSON values travel as they are (readable in the Temporal UI); anything else (LangChain messages,
dataclasses, pydantic models) goes through LangGraph's own checkpoint serializer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

_SERDE = JsonPlusSerializer()


def encode(value: Any) -> dict[str, Any]:
    try:
        json.dumps(value, allow_nan=False)
        return {"json": value}
    except (TypeError, ValueError):
        type_, data = _SERDE.dumps_typed(value)
        return {"serde": type_, "data": base64.b64encode(data).decode("ascii")}


def decode(encoded: dict[str, Any]) -> Any:
    if "json" in encoded:
        return encoded["json"]
    return _SERDE.loads_typed((encoded["serde"], base64.b64decode(encoded["data"])))


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON (for interrupt payloads shown to users); odd objects become strings."""
    return json.loads(json.dumps(value, default=repr))
