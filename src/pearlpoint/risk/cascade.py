"""Cascade: the embedded assessor decides when it is sure; the LLM is asked only where it is not.

"Unsure" means the calibrated harm probability lies in the band [low, high] (default 0.15-0.85), or
a decoded/obfuscated view was found but the harm head is below the threshold. The two opinions are
then combined: harm probability and user types are averaged, the category and level come from the
more cautious side. If the LLM fails, the embedded result stands with a ``cascade`` signal.
"""

from __future__ import annotations

from typing import Any

from pearlpoint.errors import PearlError
from pearlpoint.risk.inputs import prepare
from pearlpoint.risk.schema import RiskAssessment, RiskLevel, RiskSignal, UserTypePosterior

_LEVEL_ORDER = {RiskLevel.R0: 0, RiskLevel.R1: 1, RiskLevel.R2: 2}


def needs_llm(a: RiskAssessment, low: float = 0.15, high: float = 0.85) -> bool:
    if low <= a.harmful_probability <= high:
        return True
    obfuscated = any(s.name.startswith("obfuscation:") for s in a.signals)
    return obfuscated and a.level == RiskLevel.R0


def combine(emb: RiskAssessment, llm: RiskAssessment, weight_llm: float = 0.5) -> RiskAssessment:
    w = weight_llm
    p = (1 - w) * emb.harmful_probability + w * llm.harmful_probability
    ut = UserTypePosterior(**{k: (1 - w) * getattr(emb.user_types, k) + w * getattr(llm.user_types, k)
                              for k in ("benign", "vulnerable", "malicious")})
    cautious = llm if _LEVEL_ORDER[llm.level] > _LEVEL_ORDER[emb.level] else emb
    if p < 0.5 and emb.level == RiskLevel.R0 and llm.level == RiskLevel.R0:
        cautious = emb
    probs = dict(emb.category_probs)
    for k, v in llm.category_probs.items():
        probs[k] = round((1 - w) * probs.get(k, 0.0) + w * v, 4)
    signals = list(emb.signals) + [s for s in llm.signals if s.name == "llm_reason"]
    signals.append(RiskSignal(name="cascade", detail=f"llm consulted (embedded p={emb.harmful_probability:.2f}, "
                                                     f"llm p={llm.harmful_probability:.2f})", weight=w))
    return emb.model_copy(update={
        "category": cautious.category, "severity": cautious.severity, "level": cautious.level,
        "intent": cautious.intent, "category_probs": probs, "harmful_probability": round(p, 4),
        "user_types": ut, "signals": signals, "assessor": "cascade", "confidence": round(max(p, 1 - p), 4)})


class CascadeAssessor:
    name = "cascade"

    def __init__(self, embedded: Any, llm: Any, low: float = 0.15, high: float = 0.85) -> None:
        self.embedded, self.llm, self.low, self.high = embedded, llm, low, high

    async def aassess(self, text_or_messages: Any) -> RiskAssessment:
        text = prepare(text_or_messages)
        first = await self.embedded.aassess(text)
        if not text.strip() or not needs_llm(first, self.low, self.high):
            return first.model_copy(update={"assessor": "cascade", "signals": [
                *first.signals, RiskSignal(name="cascade", detail="embedded assessor was sure", weight=0.0)]})
        try:
            second = await self.llm.aassess(text)
        except PearlError as exc:
            return first.model_copy(update={"assessor": "cascade", "signals": [
                *first.signals, RiskSignal(name="cascade", detail=f"llm failed, embedded kept: {exc}"[:200])]})
        return combine(first, second)

    def assess(self, text_or_messages: Any) -> RiskAssessment:
        from pearlpoint.llm import run_sync

        return run_sync(self.aassess(text_or_messages))
