"""Structured output: repair of the ways small models break JSON, re-asking, and the typed error."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from pearlpoint.errors import StructuredOutputError
from pearlpoint.llm import GenerationParams, Message, extract_json, generate_structured
from pearlpoint.llm.accounting import Accounting
from pearlpoint.llm.base import ChatResult
from pearlpoint.llm.managed import ManagedModel


class Verdict(BaseModel):
    verdict: str
    score: int = Field(ge=-1, le=1)


@pytest.mark.parametrize("raw", [
    '{"verdict": "safe", "score": 1}',
    '```json\n{"verdict": "safe", "score": 1}\n```',
    'Sure! Here it is: {"verdict": "safe", "score": 1} Hope this helps.',
    "{'verdict': 'safe', 'score': 1}",
    '{"verdict": "safe", "score": 1,}',
    '{"score": 1, "verdict": "safe"',
    '{"score": 1, "verdict": "sa',
])
def test_extract_json_repairs(raw: str) -> None:
    value, _ = extract_json(raw)
    obj = Verdict.model_validate(value)
    assert obj.score == 1 and obj.verdict.startswith("sa")


def test_extract_json_rejects_prose() -> None:
    with pytest.raises(ValueError):
        extract_json("I cannot answer in JSON, sorry.")


class Scripted:
    """A scripted backend: control-flow only, never evidence that a feature works."""

    supports_json_schema = False

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.seen: list[list[Message]] = []
        self.name = "scripted"

    async def chat(self, messages, params, json_schema=None):  # type: ignore[no-untyped-def]
        self.seen.append(messages)
        return ChatResult(text=self.answers.pop(0))

    async def stream(self, messages, params):  # type: ignore[no-untyped-def]
        yield self.answers.pop(0)

    async def aclose(self) -> None:
        return None


async def test_reask_after_invalid_then_count_repair() -> None:
    backend = Scripted(['{"verdict": "safe", "score": 7}', '{"verdict": "safe", "score": 0}'])
    model = ManagedModel(backend, accounting=Accounting())
    obj = await generate_structured(model, "judge this", Verdict)
    assert obj.score == 0
    # the second request carries the validation error back to the model
    assert "score" in backend.seen[1][-1].content
    assert model.accounting.snapshot()["repairs"] == 1
    assert model.accounting.snapshot()["calls"] == 2


async def test_typed_error_after_bounded_attempts() -> None:
    backend = Scripted(["no json here"] * 3)
    model = ManagedModel(backend, accounting=Accounting())
    with pytest.raises(StructuredOutputError) as err:
        await generate_structured(model, "judge this", Verdict, max_attempts=3)
    assert err.value.attempts == 3
    assert len(backend.seen) == 3


@pytest.mark.slow
async def test_embedded_grammar_gives_valid_json(embedded_model) -> None:  # type: ignore[no-untyped-def]
    class Topic(BaseModel):
        topic: str
        is_question: bool

    obj = await generate_structured(embedded_model, [Message(role="user", content="What is the capital of France?")],
                                    Topic, params=GenerationParams(max_tokens=60))
    assert isinstance(obj.is_question, bool)
    assert obj.topic
