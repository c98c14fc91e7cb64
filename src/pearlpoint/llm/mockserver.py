"""A real OpenAI-compatible HTTP server on loopback, for tests and benchmarks.

It answers after a fixed delay with a scripted reply (a string or a function of the messages), can
fail on purpose (status codes, garbage bodies, hangs) and streams in the OpenAI chunk format. It is
an upstream stand-in, not a model: tests of features use the embedded model or a llama.cpp server.

    with MockServer(delay_s=0.1, reply="hello") as srv:
        model = get_model("openai", base_url=srv.base_url, model_name="mock")
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

Reply = str | Callable[[list[dict[str, Any]]], str]

try:  # at module level: FastAPI resolves the string annotations (PEP 563) in this module's globals
    from fastapi import Request
except ImportError:  # pragma: no cover - the serve extra is not installed
    Request = Any  # type: ignore[misc,assignment]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MockServer:
    def __init__(self, *, delay_s: float = 0.0, reply: Reply = "ok", model: str = "mock",
                 fail_statuses: list[int] | None = None, garbage: bool = False, hang: bool = False,
                 api_key: str | None = None, host: str = "127.0.0.1", port: int | None = None,
                 cut_after: int | None = None) -> None:
        self.delay_s = delay_s
        self.cut_after = cut_after  # streamed replies: drop the connection after this many chunks
        self.reply = reply
        self.model = model
        self.fail_statuses = list(fail_statuses or [])  # consumed one per request, then succeed
        self.garbage = garbage
        self.hang = hang
        self.api_key = api_key
        self.host = host
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def _reply_for(self, messages: list[dict[str, Any]]) -> str:
        return self.reply(messages) if callable(self.reply) else self.reply

    def _app(self) -> Any:
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

        app = FastAPI()

        @app.get("/v1/models")
        async def models() -> dict[str, Any]:
            return {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "mock"}]}

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> Any:
            if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
                return JSONResponse({"error": {"message": "bad key", "type": "auth"}}, status_code=401)
            body = await request.json()
            self.requests.append(body)
            if self.hang:
                await asyncio.sleep(3600)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.fail_statuses:
                status = self.fail_statuses.pop(0)
                return JSONResponse({"error": {"message": f"scripted failure {status}", "type": "mock"}},
                                    status_code=status)
            if self.garbage:
                return PlainTextResponse("<html>definitely not json", status_code=200)
            text = self._reply_for(body.get("messages", []))
            created = int(time.time())
            if body.get("stream"):
                async def gen() -> Any:
                    words = text.split(" ")
                    for i, w in enumerate(words):
                        if self.cut_after is not None and i >= self.cut_after:
                            raise ConnectionAbortedError("mock: stream cut on purpose")
                        piece = w if i == 0 else " " + w
                        chunk = {"id": "mock-1", "object": "chat.completion.chunk", "created": created,
                                 "model": self.model,
                                 "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                        yield f"data: {json.dumps(chunk)}\n\n"
                    end = {"id": "mock-1", "object": "chat.completion.chunk", "created": created,
                           "model": self.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                    yield f"data: {json.dumps(end)}\n\n"
                    yield "data: [DONE]\n\n"

                return StreamingResponse(gen(), media_type="text/event-stream")
            prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
            return {
                "id": "mock-1", "object": "chat.completion", "created": created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": max(1, len(text) // 4),
                          "total_tokens": prompt_tokens + max(1, len(text) // 4)},
            }

        return app

    def start(self) -> MockServer:
        import uvicorn

        config = uvicorn.Config(self._app(), host=self.host, port=self.port, log_level="error",
                                access_log=False, lifespan="off", backlog=4096, limit_concurrency=None,
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"mock server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MockServerProcess:
    """The same server in a child process, so a benchmark's client does not share its GIL."""

    def __init__(self, *, delay_s: float = 0.0, reply: str = "ok", port: int | None = None) -> None:
        self.delay_s = delay_s
        self.reply = reply
        self.port = port or free_port()
        self._proc: Any = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> MockServerProcess:
        import subprocess
        import sys
        import urllib.request

        self._proc = subprocess.Popen([sys.executable, "-m", "pearlpoint.llm.mockserver", "--port", str(self.port),
                                       "--delay", str(self.delay_s), "--reply", self.reply])
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.base_url}/models", timeout=1)
                return self
            except OSError:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("mock server process did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Run a mock OpenAI-compatible server on loopback.")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--reply", default="ok")
    a = ap.parse_args()
    srv = MockServer(delay_s=a.delay, reply=a.reply, port=a.port).start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
