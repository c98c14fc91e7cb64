"""pearlpoint's model layer as a NeMo Guardrails LLM provider: rails on the embedded model, offline.

NeMo 0.24 builds its main LLM through a framework whose ``register_provider(name, cls)`` maps an
``engine:`` name to a class implementing its ``LLMModel`` protocol (``generate_async``,
``stream_async``, three properties). ``PearlLLM`` is that class over ``pearlpoint.llm.get_model``,
so a rails config can say ``engine: pearlpoint`` / ``model: embedded`` (SmolLM2 in llama.cpp, no
server, no network) or ``model: openai`` with ``base_url`` (pearlpoint's retries and limits).

    models:
      - type: main
        engine: pearlpoint
        model: embedded
        parameters: {max_tokens: 200}

Register before the rails build their models: the shipped config's ``config.py`` does it in
``init(app)``; in code, call :func:`register_provider` before ``LLMRails(config)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pearlpoint.integrations import require

PROVIDER = "pearlpoint"
_ROLES = {"system", "user", "assistant"}


def _messages(prompt: Any) -> list[Any]:
    """NeMo's prompt (a string, ChatMessages or dicts) as pearlpoint messages; tool turns are dropped."""
    from pearlpoint.llm import Message

    if isinstance(prompt, str):
        return [Message(role="user", content=prompt)]
    out = []
    for m in prompt or []:
        role = m.get("role") if isinstance(m, dict) else getattr(m, "role", None)
        role = str(getattr(role, "value", role) or "")
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        if isinstance(content, list):  # multimodal parts: keep the text
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        if role in _ROLES and isinstance(content, str):
            out.append(Message(role=role, content=content))
    return out or [Message(role="user", content="")]


class PearlLLM:
    """NeMo ``LLMModel`` over a pearlpoint ``ManagedModel`` (built on first use)."""

    def __init__(self, model: str = "embedded", *, base_url: str | None = None, model_name: str | None = None,
                 api_key: str | None = None, temperature: float = 0.0, max_tokens: int = 256,
                 timeout_s: float | None = None, **_: Any) -> None:
        self._backend = model or "embedded"
        self._over = {"base_url": base_url, "model_name": model_name, "api_key": api_key, "timeout_s": timeout_s,
                      "cache": False}
        self._temperature, self._max_tokens = float(temperature), int(max_tokens)
        self._model: Any = None

    def _get(self) -> Any:
        if self._model is None:
            from pearlpoint.llm import get_model

            self._model = get_model(self._backend, **self._over)
        return self._model

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> Any:
        from pearlpoint.llm import GenerationParams

        return GenerationParams(temperature=float(kwargs.get("temperature", self._temperature)),
                                max_tokens=int(kwargs.get("max_tokens", self._max_tokens)),
                                stop=list(stop) if stop else None)

    async def generate_async(self, prompt: Any, *, stop: list[str] | None = None, **kwargs: Any) -> Any:
        types = require("nemo", "nemoguardrails.types")
        res = await self._get().chat(_messages(prompt), params=self._params(stop, kwargs))
        finish = res.finish_reason if res.finish_reason in ("stop", "length") else "stop"
        return types.LLMResponse(content=res.text, model=res.model or self.model_name, finish_reason=finish)

    async def stream_async(self, prompt: Any, *, stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[Any]:
        types = require("nemo", "nemoguardrails.types")
        async for piece in self._get().stream(_messages(prompt), params=self._params(stop, kwargs)):
            yield types.LLMResponseChunk(delta_content=piece)
        yield types.LLMResponseChunk(finish_reason="stop")

    @property
    def model_name(self) -> str:
        return self._over["model_name"] or self._backend

    @property
    def provider_name(self) -> str | None:
        return PROVIDER

    @property
    def provider_url(self) -> str | None:
        return self._over["base_url"]


def register_provider(name: str = PROVIDER) -> None:
    """Make ``engine: <name>`` build a :class:`PearlLLM` (idempotent)."""
    require("nemo", "nemoguardrails.llm.providers").register_provider(name, PearlLLM)


__all__ = ["PROVIDER", "PearlLLM", "register_provider"]
