"""A local transformers model directory (e.g. a model trained with ``pearl train``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pearlpoint.errors import ConfigError, ModelError
from pearlpoint.llm.base import ChatResult, GenerationParams, Message, Usage
from pearlpoint.llm.thinking import split_thinking

_CACHE: dict[str, tuple[Any, Any, threading.Lock]] = {}
_CACHE_LOCK = threading.Lock()


def _load(path: str) -> tuple[Any, Any, threading.Lock]:
    with _CACHE_LOCK:
        if path in _CACHE:
            return _CACHE[path]
        try:
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise ConfigError("the hf backend needs transformers: pip install 'pearlpoint[train]'") from exc
        p = Path(path).expanduser()
        if not p.exists() and "/" not in path:
            raise ConfigError(f"model directory not found: {path}")
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(p) if p.exists() else path)
            model = AutoModelForCausalLM.from_pretrained(str(p) if p.exists() else path)
        except OSError as exc:
            raise ConfigError(f"cannot load a transformers model from {path}: {exc}") from exc
        model.eval()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        _CACHE[path] = (model, tokenizer, threading.Lock())
        return _CACHE[path]


class HFBackend:
    supports_json_schema = False

    def __init__(self, model_path: str | Path) -> None:
        if not model_path:
            raise ConfigError("the hf backend needs a model directory: pass --model-name PATH")
        self.path = str(model_path)
        self.name = f"hf:{Path(self.path).name or self.path}"

    def _inputs(self, tokenizer: Any, messages: list[Message]) -> Any:
        msgs = [m.model_dump() for m in messages]
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)
        text = "\n".join(f"{m['role']}: {m['content']}" for m in msgs) + "\nassistant:"
        return tokenizer(text, return_tensors="pt")

    def _gen_kwargs(self, tokenizer: Any, params: GenerationParams) -> dict[str, Any]:
        kw: dict[str, Any] = {"max_new_tokens": params.max_tokens, "pad_token_id": tokenizer.pad_token_id}
        if params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
        else:
            kw.update(do_sample=False)
        return kw

    def _chat_sync(self, messages: list[Message], params: GenerationParams) -> ChatResult:
        import torch

        model, tokenizer, lock = _load(self.path)
        with lock, torch.no_grad():
            if params.seed is not None:
                torch.manual_seed(params.seed)
            inputs = self._inputs(tokenizer, messages)
            try:
                out = model.generate(**inputs, **self._gen_kwargs(tokenizer, params))
            except Exception as exc:
                raise ModelError(f"{self.name}: generation failed: {exc}") from exc
        n_in = inputs["input_ids"].shape[1]
        new = out[0][n_in:]
        text = tokenizer.decode(new, skip_special_tokens=True).strip()
        answer, reasoning = split_thinking(text)
        return ChatResult(text=answer, reasoning=reasoning, model=self.name,
                          usage=Usage(prompt_tokens=int(n_in), completion_tokens=int(len(new))),
                          finish_reason="length" if len(new) >= params.max_tokens else "stop")

    async def chat(self, messages: list[Message], params: GenerationParams,
                   json_schema: dict[str, Any] | None = None) -> ChatResult:
        return await asyncio.to_thread(self._chat_sync, messages, params)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str]:
        # transformers streaming needs a thread per call; one whole answer is enough for local models.
        result = await self.chat(messages, params)
        yield result.text

    async def aclose(self) -> None:
        return None
