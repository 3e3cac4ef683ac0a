"""``load_model``: a chat model from a short spec such as ``openai:gpt-4o-mini``."""

from __future__ import annotations

import importlib.util

from langchain_core.language_models import BaseChatModel

from durable_graph.errors import InvalidModelSpecError, MissingDependencyError
from durable_graph.graphs.scripted import ScriptedModel

SCRIPTED = "scripted"


def load_model(
    spec: str | None = None, *, base_url: str | None = None, api_key: str | None = None
) -> BaseChatModel:
    """The chat model named by ``spec``.

    - ``None`` or ``"scripted"``: the offline fake ``ScriptedModel``;
    - ``"provider:name"`` (``openai:gpt-4o-mini``, ``anthropic:claude-sonnet-4-5``, ...): LangChain's
      ``init_chat_model`` (needs the ``langchain`` package and the provider's package);
    - with ``base_url``: a model served by an OpenAI-compatible server (vLLM, Ollama, llama.cpp, ...)
      through ``langchain_openai.ChatOpenAI``; ``spec`` is then the model name, with or without an
      ``openai:`` prefix.
    """
    if base_url is None and (spec is None or spec.strip().lower() == SCRIPTED):
        return ScriptedModel()
    if base_url is not None:
        return _openai_compatible(spec, base_url, api_key)
    assert spec is not None
    provider, sep, name = spec.partition(":")
    if not sep or not provider.strip() or not name.strip():
        raise InvalidModelSpecError(
            f"model spec {spec!r} is not 'provider:model' (for example 'openai:gpt-4o-mini') or 'scripted'"
        )
    _require("langchain", "langchain", f"to use the model {spec!r}")
    from langchain.chat_models import init_chat_model  # type: ignore[import-not-found]

    kwargs = {"api_key": api_key} if api_key else {}
    try:
        return init_chat_model(name.strip(), model_provider=provider.strip(), **kwargs)  # type: ignore[no-any-return]
    except ImportError as exc:
        raise MissingDependencyError(f"model {spec!r} needs a package that is not installed: {exc}") from exc
    except ValueError as exc:
        raise InvalidModelSpecError(f"cannot load model {spec!r}: {exc}") from exc


def _openai_compatible(spec: str | None, base_url: str, api_key: str | None) -> BaseChatModel:
    name = (spec or "").removeprefix("openai:").strip()
    if not name or name.lower() == SCRIPTED:
        raise InvalidModelSpecError(f"a base URL ({base_url}) needs a model name, for example 'llama3.1'")
    _require("langchain_openai", "langchain-openai", f"to talk to the OpenAI-compatible server at {base_url}")
    from langchain_openai import ChatOpenAI  # type: ignore[import-not-found]

    # local servers usually ignore the key, but the client insists on having one
    return ChatOpenAI(model=name, base_url=base_url, api_key=api_key or "not-needed")  # type: ignore[no-any-return]


def _require(module: str, package: str, purpose: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise MissingDependencyError(f"the {package!r} package is needed {purpose}: pip install {package}")
