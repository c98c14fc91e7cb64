"""A scripted fake LLM for unit tests of Lingo-BP's control flow (never the proof a feature works).

The fake is a Backend wrapped in the real ManagedModel, so accounting, ``track_usage`` and the
structured-output helper are the real ones. Each call is classified by the JSON schema the caller
asked for (forward / judge / backward / ...) and answered by a handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pearlpoint.llm import ChatResult, ManagedModel, Message, Usage

KINDS = {  # schema title -> call kind; JudgeResult first: its schema embeds the other two
    '"title": "JudgeResult"': "judge",
    '"title": "ForwardReply"': "forward",
    '"title": "BackwardProposal"': "backward",
    '"title": "ExtractedChain"': "extract",
    '"title": "SatisfactionVerdict"': "satisfaction",
    '"title": "SafetyVerdict"': "safety",
}


def classify(messages: list[Message]) -> str:
    text = "\n".join(m.content for m in messages)
    for marker, kind in KINDS.items():
        if marker in text:
            return kind
    return "chat"


def judge_json(sat: int | list[int] = 1, verdict: str = "safe", suggestion: str = "") -> str:
    items = sat if isinstance(sat, list) else [sat] * 5
    names = ["empathy", "willingness", "completion", "coherence", "informativeness"]
    return json.dumps({
        "satisfaction": {"user_profile": "a student", "task": "learn", **dict(zip(names, items, strict=True)),
                         "suggestions": []},
        "safety": {"verdict": verdict, "risk_intent": "curiosity", "adapted_guideline": "no specifics",
                   "next_turn": "thanks", "suggestion": suggestion},
    })


def forward_json(answer: str = "Here is a helpful answer.", reasoning: str = "I will help.") -> str:
    return json.dumps({"reasoning": reasoning, "answer": answer})


def backward_json(edits: list[dict[str, str]] | None = None, **fields: str) -> str:
    return json.dumps({"diagnosis": fields.pop("diagnosis", "too vague"), "edits": edits or [],
                       "safety_guideline": fields.get("safety_guideline", ""),
                       "risk_intent": fields.get("risk_intent", ""), "user_needs": fields.get("user_needs", "")})


class ScriptedBackend:
    name = "scripted"
    supports_json_schema = False

    def __init__(self, handler: Callable[[str, list[Message], int], str]) -> None:
        self.handler = handler
        self.calls: list[tuple[str, list[Message]]] = []
        self.counts: dict[str, int] = {}

    async def chat(self, messages: list[Message], params: Any, json_schema: Any = None) -> ChatResult:
        kind = classify(messages)
        n = self.counts.get(kind, 0)
        self.counts[kind] = n + 1
        self.calls.append((kind, list(messages)))
        text = self.handler(kind, messages, n)
        return ChatResult(text=text, usage=Usage(prompt_tokens=sum(len(m.content) for m in messages) // 4,
                                                 completion_tokens=len(text) // 4), model=self.name)

    async def stream(self, messages: list[Message], params: Any):  # pragma: no cover - unused
        yield self.handler("chat", messages, 0)

    async def aclose(self) -> None:
        return None

    def of_kind(self, kind: str) -> list[list[Message]]:
        return [m for k, m in self.calls if k == kind]


@pytest.fixture
def scripted() -> Callable[..., tuple[ManagedModel, ScriptedBackend]]:
    def make(handler: Callable[[str, list[Message], int], str] | dict[str, Any], **kw: Any
             ) -> tuple[ManagedModel, ScriptedBackend]:
        if isinstance(handler, dict):
            table = handler

            def handler(kind: str, messages: list[Message], n: int) -> str:  # type: ignore[no-redef]
                value = table[kind]
                if isinstance(value, list):
                    return value[min(n, len(value) - 1)]
                return value(messages, n) if callable(value) else value
        backend = ScriptedBackend(handler)  # type: ignore[arg-type]
        return ManagedModel(backend, cache=None, max_retries=0, **kw), backend
    return make
