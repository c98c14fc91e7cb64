"""The model layer: one async interface to every LLM, with reliability built in.

    model = get_model("embedded")                      # SmolLM2-135M in llama.cpp (the default)
    model = get_model("openai", base_url="http://127.0.0.1:8000/v1")
    result = await model.chat([Message(role="user", content="hi")])
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from pearlpoint.errors import ConfigError
from pearlpoint.llm.accounting import Accounting, Budget, UsageCounter, track_usage
from pearlpoint.llm.base import ChatResult, GenerationParams, Message, Usage, as_messages
from pearlpoint.llm.managed import ManagedModel
from pearlpoint.llm.structured import extract_json, generate_structured

T = TypeVar("T")
BACKENDS = ("embedded", "openai", "hf")
_CACHES: dict[str, Any] = {}
_CACHES_LOCK = threading.Lock()


def _cache_for(path: Any) -> Any:
    from pearlpoint.llm.cache import ResponseCache

    key = str(path)
    with _CACHES_LOCK:
        if key not in _CACHES:
            _CACHES[key] = ResponseCache(path)
        return _CACHES[key]


def make_backend(kind: str, *, model_name: str | None = None, base_url: str | None = None,
                 api_key: str | None = None, timeout_s: float = 120.0, n_ctx: int = 4096,
                 n_threads: int | None = None) -> Any:
    if kind == "embedded":
        from pearlpoint.llm.embedded import EmbeddedBackend

        return EmbeddedBackend(model_name, n_ctx=n_ctx, n_threads=n_threads)
    if kind == "openai":
        from pearlpoint.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(base_url, model_name, api_key, timeout_s=timeout_s)
    if kind == "hf":
        from pearlpoint.llm.hf_backend import HFBackend

        return HFBackend(model_name or "")
    raise ConfigError(f"unknown backend '{kind}': choose one of {', '.join(BACKENDS)}")


def get_model(spec: str | None = None, *, settings: Any = None, role: str = "generator",
              accounting: Accounting | None = None, **overrides: Any) -> ManagedModel:
    """Build a ManagedModel from a backend name plus settings.

    ``spec`` overrides the backend named in settings; ``overrides`` (model_name, base_url, api_key,
    concurrency, timeout_s, max_retries, cache, cache_path, budget_calls, budget_tokens, ...) override
    individual settings. ``role="judge"`` reads the judge_* settings.
    """
    from pearlpoint.config import get_settings

    s = settings if settings is not None else get_settings()
    if role == "judge":
        s = s.judge_settings()
    upd = {k: v for k, v in overrides.items() if v is not None}
    if spec is not None:
        if spec not in BACKENDS:
            raise ConfigError(f"unknown backend '{spec}': choose one of {', '.join(BACKENDS)}")
        if spec != s.model and "model_name" not in upd:
            upd["model_name"] = None  # a model name belongs to the backend it was given for
        upd["model"] = spec
    if "api_key" in upd and isinstance(upd["api_key"], str):
        from pydantic import SecretStr

        upd["api_key"] = SecretStr(upd["api_key"])
    s = s.model_copy(update=upd)
    backend = make_backend(s.model, model_name=s.model_name, base_url=s.base_url,
                           api_key=s.api_key.get_secret_value() if s.api_key else None,
                           timeout_s=s.timeout_s, n_ctx=s.n_ctx, n_threads=s.n_threads)
    acc = accounting or Accounting(budget=Budget(max_calls=s.budget_calls, max_tokens=s.budget_tokens))
    # llama.cpp runs one call at a time anyway; a wide limit would only queue threads.
    concurrency = 1 if s.model == "embedded" else s.concurrency
    return ManagedModel(backend, concurrency=concurrency, timeout_s=s.timeout_s if s.model == "openai" else max(s.timeout_s, 600.0),
                        max_retries=s.max_retries, cache=_cache_for(s.cache_path) if s.cache else None,
                        accounting=acc,
                        default_params=GenerationParams(temperature=s.temperature, max_tokens=s.max_tokens))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when an event loop is already running in this thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=runner)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


__all__ = [
    "Accounting", "Budget", "ChatResult", "GenerationParams", "ManagedModel", "Message", "Usage",
    "UsageCounter", "as_messages", "extract_json", "generate_structured", "get_model", "make_backend",
    "run_sync", "track_usage",
]
