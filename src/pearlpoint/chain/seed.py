"""Seed the first safety chain from the risk assessment, the category guideline and the Pearl Point.

Seeding costs no LLM call: everything it needs has already been computed (assessment, game
solution, policy). That is what keeps Lingo-BP's initialisation to two calls (forward + judges).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from pearlpoint.chain.schema import MAX_STRATEGIES_PER_SET, SafetyChain, Strategies
from pearlpoint.risk.schema import RiskAssessment, RiskLevel

_DATA = Path(__file__).parent / "data" / "seed_phrases.yaml"


@functools.cache
def _phrases() -> dict[str, Any]:
    return yaml.safe_load(_DATA.read_text(encoding="utf-8"))


def _lang(lang: str | None) -> str:
    return "zh" if (lang or "en").lower().startswith("zh") else "en"


def _policy_or_none(policy: Any) -> Any:
    if policy is not None:
        return policy
    try:
        from pearlpoint.policy import get_policy

        return get_policy()
    except Exception:  # the policy is optional for seeding: fall back to generic texts
        return None


def _category(policy: Any, category_id: str) -> Any:
    if policy is None or not category_id or category_id == "none":
        return None
    getter = getattr(policy, "get", None)
    try:
        return getter(category_id) if getter else policy.find(category_id)
    except Exception:
        return None


def dominant_user_type(assessment: RiskAssessment) -> str:
    probs = assessment.user_types.as_dict()
    return max(probs, key=lambda k: probs[k])


def compact_guideline(category: Any, lang: str, max_items: int = 2) -> str:
    """The category rule as one or two sentences (the full text goes to the safety judge)."""
    if category is None:
        return ""
    guideline = category.guideline.get(lang)
    heads = {"en": ("Never give", "May give"), "zh": ("绝不提供", "可以提供")}[lang]
    sep, end = ("；", "。") if lang == "zh" else ("; ", ".")
    parts = []
    if guideline.must_not:
        parts.append(f"{heads[0]}: {sep.join(guideline.must_not[:max_items])}{end}")
    if guideline.may:
        parts.append(f"{heads[1]}: {sep.join(guideline.may[:max_items])}{end}")
    if not parts:
        return category.description.get(lang)
    return " ".join(parts)


def guideline_for(category_id: str, policy: Any = None, lang: str = "en") -> str:
    """Full guideline text for the safety judge ("" for the ``none`` category or an unknown id)."""
    cat = _category(_policy_or_none(policy), category_id)
    return cat.guideline_text(_lang(lang)) if cat is not None else ""


def category_label(category_id: str, policy: Any = None, lang: str = "en") -> str:
    cat = _category(_policy_or_none(policy), category_id)
    return cat.display_name(_lang(lang)) if cat is not None else (category_id or "none")


def _solution_phrases(solution: Any, lang: str) -> tuple[list[str], list[str]] | None:
    chosen = getattr(solution, "chosen", None)
    if chosen is None:
        return None
    if callable(getattr(chosen, "phrases", None)):  # the game ships its own Chinese phrases
        safety, useful = chosen.phrases(lang)
        return list(safety), list(useful)
    safety = list(getattr(chosen, "safety_phrases", []) or [])
    useful = list(getattr(chosen, "usefulness_phrases", []) or [])
    if lang == "zh":
        table = _phrases()["strategy_phrases_zh"].get(getattr(chosen, "id", ""), None)
        if table is not None:
            safety, useful = list(table.get("safety", [])), list(table.get("usefulness", []))
    return safety, useful


def _fallback_phrases(level: RiskLevel, lang: str) -> tuple[list[str], list[str]]:
    entry = _phrases()["fallback_strategies"][level.value]
    safety = entry["safety"][lang] if entry["safety"] else []
    useful = entry["usefulness"][lang] if entry["usefulness"] else []
    return list(safety), list(useful)


def _intent_text(policy: Any, assessment: RiskAssessment, lang: str) -> str:
    intents = getattr(policy, "intents", {}) or {}
    text = intents[assessment.intent.value].get(lang) if assessment.intent.value in intents else (
        assessment.intent.value.replace("_", " "))
    asker = _phrases()["asker"][lang].format(**assessment.user_types.as_dict())
    parts = [text.rstrip(". 。") + ("。" if lang == "zh" else "."), asker]
    if assessment.level == RiskLevel.R2:
        levels = getattr(policy, "levels", {}) or {}
        parts.append(levels["R2"].get(lang) if "R2" in levels else "The request hides its goal behind an attack.")
    return " ".join(parts)


def seed_chain(assessment: RiskAssessment, solution: Any = None, policy: Any = None,
               lang: str = "en") -> SafetyChain:
    """Build the first chain. ``solution`` is a ``GameSolution`` (or None); ``policy`` a ``Policy``.

    A query judged R0 whose Pearl Point carries no safety phrases gets the short form
    (needs -> usefulness strategies).
    """
    lang = _lang(lang)
    policy = _policy_or_none(policy)
    table = _phrases()
    category = _category(policy, assessment.category)

    from_game = _solution_phrases(solution, lang) if solution is not None else None
    safety, useful = from_game if from_game is not None else _fallback_phrases(assessment.level, lang)

    needs = table["needs"][dominant_user_type(assessment)][lang]
    short = assessment.level == RiskLevel.R0 and not safety
    if short:
        return SafetyChain(user_needs=needs[0].upper() + needs[1:], strategies=Strategies(usefulness=useful))

    if category is not None:
        needs = f"{needs[0].upper()}{needs[1:]}. {table['needs_topic'][lang].format(topic=category.display_name(lang))}"
        if lang == "zh":
            needs = needs.replace(". ", "。", 1)
        # The category's first constructive move makes the usefulness set specific to the topic,
        # unless the Pearl Point is a refusal that deliberately gives nothing.
        moves = category.guideline.get(lang).constructive_moves
        if moves and useful and len(useful) < MAX_STRATEGIES_PER_SET:
            useful = [*useful, moves[0]]
    else:
        needs = needs[0].upper() + needs[1:]
    return SafetyChain(
        user_needs=needs,
        risk_intent=_intent_text(policy, assessment, lang),
        safety_guideline=compact_guideline(category, lang) if category is not None else "",
        strategies=Strategies(safety=safety, usefulness=useful),
    )
