"""ManagedModel: the one place every LLM call goes through.

It wraps a backend with a concurrency limit, a timeout, retries with exponential backoff and jitter
on transient errors, a persistent cache for deterministic calls, call/token accounting and a budget.
Backends stay small and only know how to talk to their engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import weakref
from collections.abc import AsyncIterator
from typing import Any

from pearlpoint.errors import BudgetExceeded, ModelError, TransientModelError
from pearlpoint.llm.accounting import Accounting
from pearlpoint.llm.base import Backend, ChatResult, GenerationParams, Message, Usage, as_messages
from pearlpoint.llm.cache import ResponseCache, cache_key


class ManagedModel:
    def __init__(self, backend: Backend, *, concurrency: int = 8, timeout_s: float = 120.0,
                 max_retries: int = 4, cache: ResponseCache | None = None,
                 accounting: Accounting | None = None, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 8.0, default_params: GenerationParams | None = None) -> None:
        self.backend = backend
        self.name = backend.name
        self.concurrency = max(1, concurrency)
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.cache = cache
        self.accounting = accounting or Accounting()
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.default_params = default_params or GenerationParams()
        # asyncio primitives belong to one event loop; keep one semaphore per loop.
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())

    @property
    def supports_json_schema(self) -> bool:
        return bool(getattr(self.backend, "supports_json_schema", False))

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._semaphores.get(loop)
        if sem is None:
            sem = asyncio.Semaphore(self.concurrency)
            self._semaphores[loop] = sem
        return sem

    def _cacheable(self, params: GenerationParams) -> bool:
        return self.cache is not None and params.temperature == 0.0

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt))
        return random.uniform(delay / 2, delay)  # jitter spreads retries of concurrent callers

    async def chat(self, messages: str | list[Message] | list[dict[str, str]], *,
                   params: GenerationParams | None = None,
                   json_schema: dict[str, Any] | None = None) -> ChatResult:
        msgs = as_messages(messages)
        params = params or self.default_params
        key = cache_key(self.name, msgs, params, json_schema) if self._cacheable(params) else None
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.accounting.record(cache_hits=1)
                return hit
        self.accounting.before_call()
        result = await self._call_with_retries(msgs, params, json_schema)
        self.accounting.record(calls=1, prompt_tokens=result.usage.prompt_tokens,
                               completion_tokens=result.usage.completion_tokens)
        if key is not None and self.cache is not None:
            self.cache.put(key, result)
        return result

    async def _call_with_retries(self, msgs: list[Message], params: GenerationParams,
                                 json_schema: dict[str, Any] | None) -> ChatResult:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                async with self._semaphore():
                    return await asyncio.wait_for(self.backend.chat(msgs, params, json_schema),
                                                  timeout=self.timeout_s)
            except TimeoutError:
                last = TransientModelError(f"{self.name}: no answer within {self.timeout_s:g} s")
            except TransientModelError as exc:
                last = exc
            except (ModelError, BudgetExceeded):
                self.accounting.record(errors=1)
                raise
            if attempt < self.max_retries:
                self.accounting.record(retries=1)
                await asyncio.sleep(self._backoff(attempt))
        self.accounting.record(errors=1)
        raise ModelError(f"{last} (gave up after {self.max_retries + 1} attempts)") from last

    async def stream(self, messages: str | list[Message] | list[dict[str, str]], *,
                     params: GenerationParams | None = None) -> AsyncIterator[str]:
        """Yield text deltas. Retries only before the first delta; caches the whole text at the end."""
        msgs = as_messages(messages)
        params = params or self.default_params
        key = cache_key(self.name, msgs, params, None) if self._cacheable(params) else None
        if key is not None and self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.accounting.record(cache_hits=1)
                yield hit.text
                return
        self.accounting.before_call()
        pieces: list[str] = []
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                async with self._semaphore():
                    agen = self.backend.stream(msgs, params)
                    try:
                        while True:
                            try:
                                piece = await asyncio.wait_for(agen.__anext__(), timeout=self.timeout_s)
                            except StopAsyncIteration:
                                break
                            pieces.append(piece)
                            yield piece
                    finally:
                        # A caller cancelled mid-stream leaves the backend generator still
                        # unwinding inside wait_for; closing it then raises RuntimeError.
                        with contextlib.suppress(RuntimeError):
                            await agen.aclose()
                break
            except TimeoutError as exc:
                last = TransientModelError(f"{self.name}: stream stalled for {self.timeout_s:g} s")
                if pieces:
                    raise ModelError(str(last)) from exc
            except TransientModelError as exc:
                last = exc
                if pieces:
                    raise ModelError(f"{self.name}: stream broke: {exc}") from exc
            if attempt < self.max_retries:
                self.accounting.record(retries=1)
                await asyncio.sleep(self._backoff(attempt))
        else:
            self.accounting.record(errors=1)
            raise ModelError(f"{last} (gave up after {self.max_retries + 1} attempts)")
        text = "".join(pieces)
        usage = Usage(prompt_tokens=sum(len(m.content) for m in msgs) // 4, completion_tokens=len(text) // 4)
        self.accounting.record(calls=1, prompt_tokens=usage.prompt_tokens,
                               completion_tokens=usage.completion_tokens)
        if key is not None and self.cache is not None:
            self.cache.put(key, ChatResult(text=text, usage=usage, model=self.name, finish_reason="stop"))

    async def aclose(self) -> None:
        await self.backend.aclose()

    def __repr__(self) -> str:
        return f"ManagedModel({self.name!r}, concurrency={self.concurrency})"
