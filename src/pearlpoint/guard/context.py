"""What the guard needs to know about one request: the decision in a small typed object.

The proxy's ``Decision``, Lingo-BP's (assessment, solution, chain) and an integration's own state all
reduce to this, so the checker and the composer never depend on the layer that called them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REFUSAL_CLASS = frozenset({"soft_refusal", "hard_refusal"})


def _value(x: Any) -> str:
    return str(getattr(x, "value", x) or "")


@dataclass
class GuardContext:
    prompt: str  # the latest user message
    lang: str = "en"
    strategy: str = "unsteered"
    level: str = "R0"
    category: str = "none"
    intent: str = ""
    harmful_probability: float = 0.0
    user_types: dict[str, float] = field(default_factory=dict)
    chain: Any = None  # SafetyChain or None
    steering: str = ""

    @property
    def refusal_class(self) -> bool:
        return self.strategy in REFUSAL_CLASS

    @property
    def vulnerable(self) -> bool:
        ut = self.user_types or {}
        return float(ut.get("vulnerable", 0.0)) >= 0.4 or self.category == "mental_health" and \
            float(ut.get("vulnerable", 0.0)) >= 0.25

    @property
    def for_someone_else(self) -> bool:
        """A vulnerable situation told by someone close (a parent, a friend), not by the one at risk."""
        from pearlpoint.risk.features import about_someone_else

        return self.vulnerable and about_someone_else(self.prompt)

    @property
    def dominant_user(self) -> str:
        ut = self.user_types or {}
        if self.vulnerable:
            return "vulnerable"
        return max(ut, key=lambda k: ut[k]) if ut else "benign"

    @classmethod
    def from_parts(cls, prompt: str, *, assessment: Any = None, solution: Any = None, chain: Any = None,
                   lang: str = "en", steering: str = "") -> GuardContext:
        pp = solution.get("pearl_point") if isinstance(solution, dict) else getattr(solution, "pearl_point", None)
        strategy = str(pp or "unsteered")
        if assessment is None:
            return cls(prompt=prompt, lang=lang, strategy=strategy, chain=chain, steering=steering)
        ut = assessment.user_types.as_dict() if getattr(assessment, "user_types", None) is not None else {}
        return cls(prompt=prompt, lang="zh" if lang == "zh" else "en", strategy=strategy,
                   level=_value(assessment.level) or "R0", category=str(assessment.category or "none"),
                   intent=_value(getattr(assessment, "intent", "")),
                   harmful_probability=float(getattr(assessment, "harmful_probability", 0.0) or 0.0),
                   user_types={k: float(v) for k, v in ut.items()}, chain=chain, steering=steering)

    @classmethod
    def from_decision(cls, decision: Any, prompt: str, posterior: dict[str, float] | None = None) -> GuardContext:
        """From the proxy's ``Decision`` (the game's posterior, when it pressed on, replaces the assessor's)."""
        ctx = cls.from_parts(prompt, assessment=decision.assessment, solution=decision.solution,
                             chain=decision.chain, lang=decision.lang, steering=decision.steering or "")
        if posterior or getattr(decision, "posterior", None):
            ctx.user_types = dict(posterior or decision.posterior)
        return ctx
