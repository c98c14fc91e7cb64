"""Any OpenAI-compatible endpoint: vLLM, SGLang, Ollama, llama.cpp server, hosted APIs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pearlpoint.errors import ConfigError, ModelError, TransientModelError
from pearlpoint.llm.base import ChatResult, GenerationParams, Message, Usage
from pearlpoint.llm.thinking import ThinkStreamFilter, split_thinking


class OpenAIBackend:
    supports_json_schema = True

    def __init__(self, base_url: str | None, model_name: str | None = None, api_key: str | None = None,
                 *, timeout_s: float = 120.0, json_mode: str = "json_schema") -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise ConfigError("the openai backend needs the 'openai' package: pip install openai") from exc
        if not base_url:
            raise ConfigError("the openai backend needs a base URL: pass --base-url "
                              "(e.g. http://127.0.0.1:8000/v1) or set PEARL_BASE_URL")
        self._openai = openai
        self.base_url = base_url.rstrip("/")
        self.client = openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key or "sk-no-key",
                                         timeout=timeout_s, max_retries=0)
        self.model_name = model_name
        self.json_mode = json_mode  # "json_schema" | "json_object" | "none"; downgraded if refused
        self.name = f"openai:{model_name or '?'}@{self.base_url}"

    async def _model(self) -> str:
        if self.model_name:
            return self.model_name
        try:
            page = await self.client.models.list()
        except Exception as exc:
            raise self._map_error(exc) from exc
        ids = [m.id for m in page.data]
        if not ids:
            raise ModelError(f"{self.base_url} serves no models; pass --model-name")
        self.model_name = ids[0]
        self.name = f"openai:{self.model_name}@{self.base_url}"
        return self.model_name

    def _map_error(self, exc: Exception) -> Exception:
        o = self._openai
        if isinstance(exc, o.APITimeoutError):
            return TransientModelError(f"{self.base_url}: request timed out")
        if isinstance(exc, o.APIConnectionError):
            return TransientModelError(f"cannot reach {self.base_url} (is the server running? check --base-url)")
        if isinstance(exc, o.RateLimitError):
            return TransientModelError(f"{self.base_url}: rate limited (429)")
        if isinstance(exc, o.APIStatusError):
            status = exc.status_code
            if status >= 500 or status in (408, 409, 425):
                return TransientModelError(f"{self.base_url}: server error {status}")
            if status in (401, 403):
                return ModelError(f"{self.base_url}: authentication failed ({status}); check PEARL_API_KEY")
            if status == 404:
                return ModelError(f"{self.base_url}: model '{self.model_name}' not found (404); "
                                  "check --model-name or GET /v1/models")
            return ModelError(f"{self.base_url}: request rejected ({status}): {_short(exc)}")
        return ModelError(f"{self.base_url}: {type(exc).__name__}: {_short(exc)}")

    def _kwargs(self, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {"temperature": params.temperature, "max_tokens": params.max_tokens,
                              "top_p": params.top_p}
        if params.seed is not None:
            kw["seed"] = params.seed
        if params.stop:
            kw["stop"] = params.stop
        return kw

    def _response_format(self, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None or self.json_mode == "none":
            return None
        if self.json_mode == "json_object":
            return {"type": "json_object", "schema": schema}
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}

    async def chat(self, messages: list[Message], params: GenerationParams,
                   json_schema: dict[str, Any] | None = None) -> ChatResult:
        model = await self._model()
        kw = self._kwargs(params)
        fmt = self._response_format(json_schema)
        if fmt is not None:
            kw["response_format"] = fmt
        try:
            resp = await self.client.chat.completions.create(
                model=model, messages=[m.model_dump() for m in messages], **kw)
        except self._openai.BadRequestError as exc:
            if fmt is not None and "response_format" in str(exc).lower() or (fmt is not None and "schema" in str(exc).lower()):
                # The server does not know structured output: fall back to prompting + repair.
                self.json_mode = "json_object" if self.json_mode == "json_schema" else "none"
                return await self.chat(messages, params, json_schema)
            raise self._map_error(exc) from exc
        except Exception as exc:
            raise self._map_error(exc) from exc
        if not getattr(resp, "choices", None):
            raise TransientModelError(f"{self.base_url}: answer without choices")
        choice = resp.choices[0]
        msg = choice.message
        text = msg.content or ""
        reasoning = getattr(msg, "reasoning_content", None) or getattr(msg, "reasoning", None)
        if reasoning is None:
            extra = getattr(msg, "model_extra", None) or {}
            reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        answer, inline = split_thinking(text)
        usage = Usage(prompt_tokens=getattr(resp.usage, "prompt_tokens", 0) or 0,
                      completion_tokens=getattr(resp.usage, "completion_tokens", 0) or 0)
        return ChatResult(text=answer, reasoning=reasoning or inline, usage=usage, model=model,
                          finish_reason=choice.finish_reason)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str]:
        model = await self._model()
        try:
            stream = await self.client.chat.completions.create(
                model=model, messages=[m.model_dump() for m in messages], stream=True, **self._kwargs(params))
        except Exception as exc:
            raise self._map_error(exc) from exc
        think = ThinkStreamFilter()
        try:
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta.content or ""
                out = think.feed(delta)
                if out:
                    yield out
        except Exception as exc:
            raise self._map_error(exc) from exc
        rest = think.flush()
        if rest:
            yield rest

    async def aclose(self) -> None:
        await self.client.close()


def _short(exc: Exception, n: int = 300) -> str:
    s = str(exc).replace("\n", " ")
    return s if len(s) <= n else s[:n] + "..."
