"""The LLM assessor: the project's own prompt (prompts/templates/*/risk_assess.j2) and a JSON answer
constrained by a schema built from the policy, through ``pearlpoint.llm.generate_structured``.

The answer schema is deliberately small (enums and a few numbers) so that even the embedded 135M model,
grammar-constrained by llama.cpp, always produces something valid; values are clipped and checked
against the policy when turned into a RiskAssessment.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, create_model

from pearlpoint.policy import Policy, get_policy
from pearlpoint.risk.decision import distress_floor, with_distress_mass
from pearlpoint.risk.features import extract
from pearlpoint.risk.inputs import language_of, prepare
from pearlpoint.risk.schema import (
    Intent,
    InteractionForm,
    RiskAssessment,
    RiskLevel,
    RiskSignal,
    UserTypePosterior,
)

# The LLM reads the head and the tail of very long inputs (its context is small); the embedded
# assessor, which the cascade always runs first, reads the whole text in windows.
LLM_HEAD_CHARS = 3000
LLM_TAIL_CHARS = 1500


def clip_for_llm(text: str) -> str:
    if len(text) <= LLM_HEAD_CHARS + LLM_TAIL_CHARS + 100:
        return text
    skipped = len(text) - LLM_HEAD_CHARS - LLM_TAIL_CHARS
    return f"{text[:LLM_HEAD_CHARS]}\n[... {skipped} characters not shown ...]\n{text[-LLM_TAIL_CHARS:]}"


def judgement_model(policy: Policy) -> type[BaseModel]:
    """The JSON shape the LLM must fill; the category enum follows the (possibly user-extended) policy."""
    CategoryId = Enum("CategoryId", {c.id: c.id for c in policy.categories}, type=str)  # type: ignore[misc]
    return create_model(
        "RiskJudgement",
        category=(CategoryId, ...),
        level=(RiskLevel, ...),
        intent=(Intent, ...),
        interaction_form=(InteractionForm, ...),
        harmful_probability=(float, ...),
        vulnerable_user=(float, 0.0),
        malicious_user=(float, 0.0),
        reason=(str, Field("", max_length=200)),
    )


def _p(x: Any) -> float:
    try:
        return min(1.0, max(0.0, float(x)))
    except (TypeError, ValueError):
        return 0.0


def to_assessment(j: BaseModel, text: str, policy: Policy, assessor: str = "llm") -> RiskAssessment:
    """A validated judgement -> RiskAssessment, with the cheap cues added as signals."""
    cat_id = getattr(j.category, "value", j.category)
    cat = policy.get(cat_id) or policy.find("none")
    p = _p(j.harmful_probability)
    vul, mal = _p(j.vulnerable_user), _p(j.malicious_user)
    level = j.level
    intent = j.intent
    probs = {"none": 1 - p} if cat.id == "none" else {cat.id: p, "none": 1 - p}
    fr = extract(text)
    # The same safety net as the embedded assessor: explicit first-person distress is never missed.
    vul = distress_floor(vul, fr)
    mal = min(mal, 1.0 - vul)
    if vul >= 0.5 and policy.get("mental_health") is not None:
        cat = policy.get("mental_health")
        level = RiskLevel.R1 if level == RiskLevel.R0 else level
        intent = Intent.risk_inquiry if level != RiskLevel.R2 else intent
        probs = with_distress_mass(probs, vul)
    if cat.id == "none" and level != RiskLevel.R0 and p < 0.5 and vul < 0.5:
        level = RiskLevel.R0  # a consistent answer: no category, no risk
    ben = max(0.0, 1.0 - vul - mal)
    signals = list(fr.signals)
    if j.reason:
        signals.append(RiskSignal(name="llm_reason", detail=str(j.reason)[:200], weight=round(p, 3)))
    probs = {k: round(v, 4) for k, v in sorted(probs.items(), key=lambda kv: -kv[1])}
    return RiskAssessment(
        category=cat.id, category_probs=probs, level=level, intent=intent,
        interaction_form=j.interaction_form, severity=cat.severity if cat.id != "none" else 0,
        harmful_probability=p, user_types=UserTypePosterior(benign=ben, vulnerable=vul, malicious=mal),
        signals=signals, language=language_of(text), assessor=assessor, confidence=max(p, 1 - p),
        adversarial_probability=1.0 if level == RiskLevel.R2 else 0.0, distress_probability=vul)


class LLMAssessor:
    """Asks a model (any backend from ``get_model``) for a structured risk judgement."""

    name = "llm"

    def __init__(self, model: Any = None, policy: Policy | None = None, settings: Any = None,
                 max_tokens: int = 160, max_attempts: int = 3) -> None:
        self.policy = policy or get_policy(getattr(settings, "policy_file", None) if settings else None)
        self._model = model
        self._settings = settings
        self.max_tokens = max_tokens
        self.max_attempts = max_attempts
        self.schema = judgement_model(self.policy)

    @property
    def model(self) -> Any:
        if self._model is None:
            from pearlpoint.llm import get_model

            self._model = get_model(None, settings=self._settings, role="judge")
        return self._model

    def messages(self, text: str, lang: str) -> list[Any]:
        from pearlpoint.prompts import render_messages

        cats = [{"id": c.id, "name": c.display_name(lang), "description": c.description.get(lang)}
                for c in self.policy.categories]
        levels = {k: v.get(lang) for k, v in self.policy.levels.items()}
        intents = {k: v.get(lang) for k, v in self.policy.intents.items()}
        return render_messages("risk_assess", lang=lang, categories=cats, levels=levels, intents=intents,
                               text=clip_for_llm(text))

    async def aassess(self, text_or_messages: Any) -> RiskAssessment:
        from pearlpoint.llm import GenerationParams, generate_structured

        text = prepare(text_or_messages)
        if not text.strip():
            return RiskAssessment(assessor=self.name, category_probs={"none": 1.0},
                                  signals=[RiskSignal(name="empty_input", detail="nothing to assess")])
        lang = language_of(text)
        judgement = await generate_structured(
            self.model, self.messages(text, lang), self.schema, lang=lang, max_attempts=self.max_attempts,
            params=GenerationParams(temperature=0.0, max_tokens=self.max_tokens))
        return to_assessment(judgement, text, self.policy, self.name)

    def assess(self, text_or_messages: Any) -> RiskAssessment:
        from pearlpoint.llm import run_sync

        return run_sync(self.aassess(text_or_messages))
