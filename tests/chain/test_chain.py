"""The safety chain: schema, seeding from assessment + policy + game, steering, meta scrubbing, extraction."""

from __future__ import annotations

import json

import pytest

from pearlpoint.chain import SafetyChain, Strategies, extract_chain, scrub_meta, seed_chain, steering_message
from pearlpoint.chain.forward import forward_schema, reasoning_cap
from pearlpoint.risk.schema import Intent, RiskAssessment, RiskLevel, UserTypePosterior

SELF_HARM = RiskAssessment(category="self_harm", level=RiskLevel.R1, intent=Intent.risk_inquiry, severity=4,
                           user_types=UserTypePosterior(benign=0.15, vulnerable=0.8, malicious=0.05))
BENIGN = RiskAssessment()


def test_phrases_are_cleaned_and_deduplicated():
    s = Strategies(safety=["- be careful", "Be careful!", "  2) point to help  ", ""], usefulness="a; b\nc")
    assert s.safety == ["be careful", "point to help"]
    assert s.usefulness == ["a", "b", "c"]


def test_short_form_and_empty_chain():
    assert SafetyChain(user_needs="x", strategies=Strategies(usefulness=["y"])).is_short
    assert SafetyChain().is_empty and SafetyChain().as_text() == ""
    assert not SafetyChain(risk_intent="z").is_short


def test_seed_for_a_benign_query_is_the_short_form():
    from pearlpoint.game import solve

    chain = seed_chain(BENIGN, solve(BENIGN), lang="en")
    assert chain.is_short and chain.user_needs and chain.strategies.usefulness


def test_seed_for_a_risky_query_uses_game_and_policy():
    from pearlpoint.game import solve
    from pearlpoint.policy import get_policy

    solution = solve(SELF_HARM)
    chain = seed_chain(SELF_HARM, solution, get_policy(), lang="en")
    assert not chain.is_short
    for phrase in solution.chosen.safety_phrases:
        assert phrase in chain.strategies.safety
    for phrase in solution.chosen.usefulness_phrases:
        assert phrase in chain.strategies.usefulness
    category = get_policy().find("self_harm")
    assert category.guideline.en.must_not[0] in chain.safety_guideline
    assert "vulnerable 80%" in chain.risk_intent
    assert category.name in chain.user_needs


def test_seed_in_chinese():
    from pearlpoint.game import solve

    chain = seed_chain(SELF_HARM, solve(SELF_HARM), lang="zh")
    text = chain.as_text("zh")
    assert "用户需求" in text and all(any("\u4e00" <= c <= "\u9fff" for c in s) for s in chain.strategies.safety)


def test_seed_without_game_or_policy_falls_back_by_level():
    r2 = SELF_HARM.model_copy(update={"level": RiskLevel.R2})
    chain = seed_chain(r2, None, None, lang="en")
    assert chain.strategies.safety and chain.strategies.usefulness
    assert "attack" in chain.risk_intent.lower() or "jailbreak" in chain.risk_intent.lower()


def test_steering_message_carries_the_chain_and_forbids_mentioning_it():
    chain = SafetyChain(user_needs="support", risk_intent="worry", safety_guideline="no methods",
                        strategies=Strategies(safety=["give no method details"], usefulness=["offer a hotline"]))
    msg = steering_message(chain, "en")
    assert "give no method details" in msg and "offer a hotline" in msg and "never" in msg.lower()
    zh = steering_message(chain, "zh")
    assert "不要引用" in zh and "offer a hotline" in zh
    assert steering_message(SafetyChain(), "en")  # empty chain still renders a valid message


def test_steering_passes_template_syntax_verbatim():
    chain = SafetyChain(user_needs="{{ 7*7 }} {response} {% raw %}")
    assert "{{ 7*7 }} {response} {% raw %}" in steering_message(chain)


@pytest.mark.parametrize(("answer", "removed"), [
    ("Sleep matters. Following my safety strategy, I will not give doses. Try a routine.", 1),
    ("According to the guidelines I must be careful. Rest well.", 1),
    ("Keep a regular bedtime. Avoid screens late at night.", 0),
])
def test_scrub_meta(answer, removed):
    cleaned, n = scrub_meta(answer, "how do I sleep better?")
    assert n == removed
    assert "strategy" not in cleaned.lower() and "guidelines" not in cleaned.lower()
    assert cleaned


def test_scrub_meta_keeps_words_the_user_used_and_never_empties():
    q = "What is a safety strategy for a chemistry lab?"
    answer = "A good safety strategy starts with goggles."
    assert scrub_meta(answer, q) == (answer, 0)
    only_meta = "My safety strategy says no."
    assert scrub_meta(only_meta, "hi") == (only_meta, 0)
    assert scrub_meta("根据安全策略，我不能说。多休息。", "睡不着", "zh")[0] == "多休息。"


def test_forward_schema_caps_reasoning():
    schema = forward_schema(reasoning_cap(128)).model_json_schema()
    assert schema["properties"]["reasoning"]["maxLength"] == reasoning_cap(128) <= 200
    assert schema["required"] == ["reasoning", "answer"]


async def test_extract_chain_with_a_scripted_model(scripted):
    reply = json.dumps({"user_needs": "relief from insomnia", "risk_intent": "", "safety_guideline": "",
                        "safety": [], "usefulness": ["- suggest a routine", "Suggest a routine", "explain sleep hygiene"]})
    model, backend = scripted({"extract": reply})
    chain = await extract_chain("The user can't sleep; I'll give hygiene tips {response}.", "I can't sleep",
                                model=model)
    assert chain.is_short and chain.strategies.usefulness == ["suggest a routine", "explain sleep hygiene"]
    assert "{response}" in backend.calls[0][1][-1].content
