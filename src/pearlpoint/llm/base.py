"""Types shared by every model backend: messages in; text, reasoning and usage out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerationParams(BaseModel):
    """Sampling parameters. Part of the cache key, so two calls differ iff their params differ."""

    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class ChatResult(BaseModel):
    text: str
    reasoning: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None
    cached: bool = False


@runtime_checkable
class Backend(Protocol):
    """What a backend implements. Reliability (retries, cache, limits) lives in ManagedModel, not here."""

    name: str
    supports_json_schema: bool

    async def chat(self, messages: list[Message], params: GenerationParams,
                   json_schema: dict[str, Any] | None = None) -> ChatResult: ...

    def stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str]: ...

    async def aclose(self) -> None: ...


def as_messages(messages: str | list[Message] | list[dict[str, str]]) -> list[Message]:
    """Accept a bare string, dicts or Messages; always return Messages."""
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    return [m if isinstance(m, Message) else Message(**m) for m in messages]
