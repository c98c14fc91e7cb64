"""The OpenAI wire format the proxy speaks, as pydantic models, plus OpenAI-style error bodies.

Requests are validated here (not by FastAPI's default handler) so every failure comes back as
``{"error": {"message", "type", "param", "code"}}`` with a message that names the field.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _only_text(cls, v: Any) -> Any:
        if isinstance(v, list):
            for i, part in enumerate(v):
                if isinstance(part, dict) and part.get("type") not in (None, "text"):
                    raise ValueError(f"content part {i} has type {part.get('type')!r}; only 'text' parts are supported")
        return v

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content)

    @property
    def plain_role(self) -> str:
        return "system" if self.role == "developer" else self.role


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The fields of ``POST /v1/chat/completions`` the proxy honours; unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1)
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="only one choice is supported")
    user: str | None = None

    @model_validator(mode="after")
    def _has_user_turn(self) -> ChatRequest:
        if not any(m.role == "user" and m.text().strip() for m in self.messages):
            raise ValueError("messages must contain at least one non-empty 'user' message")
        return self

    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion_body(*, cid: str, model: str, text: str, finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, pearl: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "logprobs": None, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }
    if pearl is not None:
        body["pearl"] = pearl
    return body


def chunk_body(*, cid: str, model: str, created: int, delta: dict[str, Any], finish_reason: str | None = None,
               pearl: dict[str, Any] | None = None, usage: dict[str, int] | None = None,
               empty_choices: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if empty_choices else [{"index": 0, "delta": delta, "logprobs": None,
                                               "finish_reason": finish_reason}],
    }
    if pearl is not None:
        body["pearl"] = pearl
    if usage is not None:
        body["usage"] = usage
    return body


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "upstream_timeout",
}


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"),
                      "param": param, "code": code}}


def describe_validation_error(exc: ValidationError) -> tuple[str, str | None]:
    """One readable sentence for the first problem (plus a count), and the field path as ``param``."""
    errs = exc.errors()
    first = errs[0]
    loc = [str(x) for x in first["loc"] if not str(x).startswith("function-after")]
    # drop pydantic's union branch names (e.g. 'str', 'list[TextPart]') from the path
    loc = [x for x in loc if x not in {"str", "list[TextPart]", "none", "float", "int"}]
    param = ".".join(loc) or None
    msg = first["msg"]
    if first["type"] == "missing":
        text = f"missing required field '{param}'"
    elif param:
        got = first.get("input")
        shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
        if len(shown) > 60:
            shown = shown[:57] + "..."
        text = f"field '{param}': {msg} (got {shown})"
    else:
        text = msg
    if len(errs) > 1:
        text += f" (and {len(errs) - 1} more problem{'s' if len(errs) > 2 else ''})"
    return text, param
