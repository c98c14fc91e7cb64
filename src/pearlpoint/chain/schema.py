"""The safety chain: the structured reasoning that Lingo-BP optimises.

``user_needs -> risk_intent -> safety_guideline -> strategies{safety, usefulness}``. Strategies are
short phrases so that the optimiser can change them one at a time (step-size control). A benign
query collapses to the short form ``user_needs -> strategies`` (no intent, no guideline, no safety
strategies).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, field_validator

MAX_STRATEGIES_PER_SET = 6
MAX_PHRASE_CHARS = 200


def clean_phrase(text: str) -> str:
    """One strategy phrase: a single line, no list bullets, bounded length."""
    text = re.sub(r"\s+", " ", str(text or "")).strip()
    text = re.sub(r"^(?:[-*\u2022]|\d+[.)])\s*", "", text).strip()
    if len(text) > MAX_PHRASE_CHARS:
        text = text[: MAX_PHRASE_CHARS - 1].rstrip() + "\u2026"
    return text


def phrase_key(text: str) -> str:
    """Normalised form used to decide that two phrases are the same strategy."""
    return re.sub(r"[\W_]+", " ", clean_phrase(text).casefold()).strip()


def dedupe_phrases(phrases: list[str]) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for p in phrases:
        p = clean_phrase(p)
        key = phrase_key(p)
        if not key or key in seen:
            continue
        seen.add(key)
        out.append(p)
    return out


class Strategies(BaseModel):
    safety: list[str] = Field(default_factory=list, description="what the answer must avoid or add to stay safe")
    usefulness: list[str] = Field(default_factory=list, description="what makes the answer genuinely helpful")

    @field_validator("safety", "usefulness", mode="before")
    @classmethod
    def _phrases(cls, v: object) -> list[str]:
        if v is None:
            return []
        if isinstance(v, str):
            v = [s for s in re.split(r"[\n;]+", v)]
        return dedupe_phrases([str(x) for x in v])  # type: ignore[union-attr]

    def get(self, which: str) -> list[str]:
        if which not in ("safety", "usefulness"):
            raise ValueError(f"unknown strategy set {which!r}; expected 'safety' or 'usefulness'")
        return list(getattr(self, which))


class SafetyChain(BaseModel):
    """Typed chain. Empty text fields are allowed (a benign query leaves intent and guideline empty)."""

    user_needs: str = ""
    risk_intent: str = ""
    safety_guideline: str = ""
    strategies: Strategies = Field(default_factory=Strategies)

    @field_validator("user_needs", "risk_intent", "safety_guideline", mode="before")
    @classmethod
    def _text(cls, v: object) -> str:
        return "" if v is None else str(v).strip()

    @property
    def is_short(self) -> bool:
        """Short form: only needs and strategies (benign query)."""
        return not self.risk_intent and not self.safety_guideline and not self.strategies.safety

    @property
    def is_empty(self) -> bool:
        return not (self.user_needs or self.risk_intent or self.safety_guideline
                    or self.strategies.safety or self.strategies.usefulness)

    def with_strategies(self, *, safety: list[str] | None = None,
                        usefulness: list[str] | None = None) -> SafetyChain:
        return self.model_copy(update={"strategies": Strategies(
            safety=self.strategies.safety if safety is None else safety,
            usefulness=self.strategies.usefulness if usefulness is None else usefulness)})

    def as_text(self, lang: str = "en") -> str:
        """A compact human-readable rendering (for logs, the CLI and reasoning traces)."""
        zh = lang == "zh"
        labels = (("用户需求", "风险意图", "安全准则", "安全策略", "有用性策略") if zh else
                  ("User needs", "Risk intent", "Safety guideline", "Safety strategies", "Usefulness strategies"))
        sep = "；" if zh else "; "
        lines = []
        if self.user_needs:
            lines.append(f"{labels[0]}: {self.user_needs}")
        if self.risk_intent:
            lines.append(f"{labels[1]}: {self.risk_intent}")
        if self.safety_guideline:
            lines.append(f"{labels[2]}: {self.safety_guideline}")
        if self.strategies.safety:
            lines.append(f"{labels[3]}: {sep.join(self.strategies.safety)}")
        if self.strategies.usefulness:
            lines.append(f"{labels[4]}: {sep.join(self.strategies.usefulness)}")
        return "\n".join(lines)


def bounded_text(max_chars: int):  # noqa: ANN201 - returns an Annotated type
    """A str type capped at ``max_chars``: the cap goes into the JSON schema (llama.cpp's grammar
    enforces it, which bounds tokens on small models) and over-long values are cut, not rejected."""
    from typing import Annotated

    from pydantic import BeforeValidator

    def _cut(v: object) -> str:
        s = "" if v is None else str(v).strip()
        return s if len(s) <= max_chars else s[: max_chars - 1].rstrip() + "\u2026"

    return Annotated[str, BeforeValidator(_cut), Field(max_length=max_chars)]
