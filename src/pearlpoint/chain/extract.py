"""Extraction: turn free-form reasoning into a typed safety chain.

Reasoning models think in prose, and imported datasets carry reasoning traces; extraction lets both
enter Lingo-BP (as a starting chain) and the training data (as structured reasoning).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pearlpoint.chain.schema import SafetyChain, Strategies, bounded_text


class ExtractedChain(BaseModel):
    """Flat shape asked from the model (flat is easier for small models than the nested chain)."""

    user_needs: bounded_text(300) = ""  # type: ignore[valid-type]
    risk_intent: bounded_text(300) = ""  # type: ignore[valid-type]
    safety_guideline: bounded_text(400) = ""  # type: ignore[valid-type]
    safety: list[bounded_text(120)] = Field(default_factory=list, max_length=6)  # type: ignore[valid-type]
    usefulness: list[bounded_text(120)] = Field(default_factory=list, max_length=6)  # type: ignore[valid-type]

    def to_chain(self) -> SafetyChain:
        return SafetyChain(user_needs=self.user_needs, risk_intent=self.risk_intent,
                           safety_guideline=self.safety_guideline,
                           strategies=Strategies(safety=self.safety[:6], usefulness=self.usefulness[:6]))


async def extract_chain(reasoning: str, query: str = "", *, model: Any, lang: str = "en",
                        max_tokens: int = 384, max_attempts: int = 2) -> SafetyChain:
    """One structured call. Raises StructuredOutputError when the model's answer cannot be parsed."""
    from pearlpoint.llm import GenerationParams, generate_structured
    from pearlpoint.prompts import render_messages

    lang = "zh" if lang == "zh" else "en"
    msgs = render_messages("chain_extract", lang=lang, reasoning=reasoning, query=query)
    out = await generate_structured(model, msgs, ExtractedChain,
                                    params=GenerationParams(max_tokens=max_tokens, temperature=0.0),
                                    max_attempts=max_attempts, lang=lang)
    return out.to_chain()


def extract_chain_sync(reasoning: str, query: str = "", *, model: Any, lang: str = "en", **kw: Any) -> SafetyChain:
    from pearlpoint.llm import run_sync

    return run_sync(extract_chain(reasoning, query, model=model, lang=lang, **kw))
