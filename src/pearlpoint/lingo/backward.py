"""Backward step: one call turns the judges' verdicts and suggestions into a small edit of the chain.

The model proposes strategy edits and re-derives, in reverse order, the guideline, the risk intent
and the user needs, all in ONE structured answer. The code then decides what is actually applied:
at most one strategy change per set (``step_control``), frozen sets untouched, empty proposals
never blank a field, and a benign (short) chain stays short unless the safety judge objected.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from pearlpoint.chain.schema import SafetyChain, bounded_text
from pearlpoint.lingo.judges import JudgeResult
from pearlpoint.lingo.step_control import StrategyEdit, limit_step


class BackwardProposal(BaseModel):
    """What the model is asked for; the field order IS the order of derivation."""

    diagnosis: bounded_text(160) = ""  # type: ignore[valid-type]
    edits: list[StrategyEdit] = Field(default_factory=list, max_length=3)
    safety_guideline: bounded_text(240) = ""  # type: ignore[valid-type]
    risk_intent: bounded_text(200) = ""  # type: ignore[valid-type]
    user_needs: bounded_text(200) = ""  # type: ignore[valid-type]

    @field_validator("edits", mode="before")
    @classmethod
    def _cap(cls, v: Any) -> Any:
        if isinstance(v, dict):
            v = [v]
        if isinstance(v, list):  # drop malformed entries instead of failing the whole step
            return [e for e in v if isinstance(e, dict | StrategyEdit)][:3]
        return v


def frozen_sets(mode: str) -> frozenset[str]:
    """User mode optimises helpfulness only: the safety strategies stay as the developer step left them."""
    return frozenset({"safety"}) if mode == "user" else frozenset()


def apply_proposal(chain: SafetyChain, proposal: BackwardProposal, mode: str,
                   verdict: JudgeResult | None = None) -> tuple[SafetyChain, dict[str, Any]]:
    """Apply a proposal under step-size control. Returns the new chain and what happened."""
    step = limit_step(chain.strategies, proposal.edits, frozen=frozen_sets(mode))
    safety_objected = verdict is not None and verdict.safety.score < 1.0
    keep_short = chain.is_short and not safety_objected
    if mode == "user" or keep_short:
        guideline, intent = chain.safety_guideline, chain.risk_intent
    else:
        guideline = proposal.safety_guideline or chain.safety_guideline
        intent = proposal.risk_intent or chain.risk_intent
    strategies = step.strategies
    if keep_short and strategies.safety:
        # A harmless query gained a safety strategy nobody asked for: undo it (short form stays short).
        step.dropped += [{"set": "safety", "op": a.op, "old": a.old, "new": a.new,
                          "reason": "short chain: no safety objection"} for a in step.applied if a.set == "safety"]
        step.applied = [a for a in step.applied if a.set != "safety"]
        strategies = strategies.model_copy(update={"safety": chain.strategies.safety})
    new_chain = SafetyChain(user_needs=proposal.user_needs or chain.user_needs, risk_intent=intent,
                            safety_guideline=guideline, strategies=strategies)
    info = {"mode": mode, "diagnosis": proposal.diagnosis,
            "applied": [a.model_dump() for a in step.applied], "dropped": step.dropped,
            "proposed": [e.model_dump() for e in proposal.edits]}
    return new_chain, info


async def backward(chain: SafetyChain, query: str, answer: str, verdict: JudgeResult, *, mode: str,
                   model: Any, lang: str = "en", max_tokens: int = 384, max_attempts: int = 2,
                   max_chars: int = 12000) -> tuple[SafetyChain, dict[str, Any]]:
    """One call. Raises StructuredOutputError when the proposal cannot be parsed."""
    from pearlpoint.lingo.judges import clip_text
    from pearlpoint.llm import GenerationParams, generate_structured
    from pearlpoint.prompts import render_messages

    lang = "zh" if lang == "zh" else "en"
    msgs = render_messages(
        "lingo_backward", lang=lang, mode=mode, frozen=sorted(frozen_sets(mode)), chain=chain.model_dump(),
        query=clip_text(query, max_chars), answer=clip_text(answer, max_chars),
        satisfaction=verdict.satisfaction, safety=verdict.safety,
        show_satisfaction=mode in ("user", "both"), show_safety=mode in ("developer", "both"))
    proposal = await generate_structured(model, msgs, BackwardProposal,
                                         params=GenerationParams(max_tokens=max_tokens, temperature=0.0),
                                         max_attempts=max_attempts, lang=lang)
    return apply_proposal(chain, proposal, mode, verdict)
