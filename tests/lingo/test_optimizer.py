"""Lingo-BP control flow with a scripted model: call counts, schedule, early stop, selection, faults.

The scripted model only proves the loop does what it should with given verdicts; test_e2e runs the
real embedded model.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from lingo.fakes import backward_json, forward_json, judge_json
from pearlpoint.chain import SafetyChain, Strategies
from pearlpoint.errors import PearlError
from pearlpoint.lingo import Iterate, LingoConfig, Record, choose_best, respond, respond_async
from pearlpoint.llm import Accounting, Budget
from pearlpoint.risk.schema import Intent, RiskAssessment, RiskLevel, UserTypePosterior

RISKY = RiskAssessment(category="self_harm", level=RiskLevel.R1, intent=Intent.risk_inquiry, severity=4,
                       harmful_probability=0.6, user_types=UserTypePosterior(benign=0.2, vulnerable=0.7,
                                                                             malicious=0.1), assessor="test")
BENIGN = RiskAssessment(assessor="test")


def cfg(**kw):
    return LingoConfig(**{"max_tokens": 64, "judge_max_tokens": 64, "backward_max_tokens": 64, **kw})


def script(judges, backwards=None, forwards=None):
    """Handlers: the n-th judge call returns judges[n] (last one repeats)."""
    return {
        "forward": forwards or (lambda msgs, n: forward_json(f"answer number {n}")),
        "judge": judges,
        "backward": backwards or (lambda msgs, n: backward_json(
            [{"set": "usefulness", "op": "add", "new": f"new idea {n}"}], user_needs=f"needs {n}")),
    }


async def test_two_rounds_cost_at_most_eight_calls_and_usage_is_recorded(scripted):
    model, backend = scripted(script([judge_json(0, "partly_safe", "soften"), judge_json(0), judge_json(0)]))
    rec = await respond_async("How do I cope?", generator=model, judge=model, assessment=RISKY, config=cfg(steps=2))
    assert len(rec.iterates) == 3
    assert rec.usage["calls"] == len(backend.calls) == 8
    assert [k for k, _ in backend.calls] == ["forward", "judge"] + ["backward", "forward", "judge"] * 2
    assert sum(it.usage["calls"] for it in rec.iterates) == 8
    assert rec.usage["prompt_tokens"] > 0 and rec.usage["completion_tokens"] > 0
    assert rec.iterates[1].backward["applied"] and rec.iterates[1].chain.user_needs == "needs 0"


async def test_early_stop_when_both_scores_are_perfect(scripted):
    model, backend = scripted(script([judge_json(1)]))
    rec = await respond_async("What is a haiku?", generator=model, judge=model, assessment=BENIGN,
                              config=cfg(steps=3))
    assert len(rec.iterates) == 1 and rec.usage["calls"] == 2 and rec.chosen_index == 0
    assert rec.initial.perfect and rec.answer == "answer number 0"


async def test_user_mode_freezes_safety_strategies_and_guideline(scripted):
    edits = [{"set": "safety", "op": "remove", "old": "x"}, {"set": "safety", "op": "add", "new": "brand new rule"},
             {"set": "usefulness", "op": "add", "new": "share a breathing exercise"}]
    model, _ = scripted(script([judge_json(0), judge_json(0)],
                               backwards=lambda m, n: backward_json(edits, safety_guideline="rewritten rule",
                                                                    risk_intent="rewritten intent")))
    rec = await respond_async("I feel low", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=1, schedule="user"))
    seed, step = rec.iterates
    assert step.mode == "user"
    assert step.chain.strategies.safety == seed.chain.strategies.safety
    assert step.chain.safety_guideline == seed.chain.safety_guideline
    assert step.chain.risk_intent == seed.chain.risk_intent
    assert step.chain.strategies.usefulness == [*seed.chain.strategies.usefulness, "share a breathing exercise"]
    assert any(d["reason"] == "set frozen in this mode" for d in step.backward["dropped"])


async def test_developer_mode_may_change_safety(scripted):
    edits = [{"set": "safety", "op": "add", "new": "give no method details"}]
    model, backend = scripted(script([judge_json(1, "partly_safe", "no methods"), judge_json(1)],
                                     backwards=lambda m, n: backward_json(edits, safety_guideline="rewritten rule")))
    rec = await respond_async("I feel low", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=2, schedule=["developer", "user"]))
    assert rec.iterates[1].mode == "developer"
    assert rec.iterates[1].chain.strategies.safety[-1] == "give no method details"
    assert rec.iterates[1].chain.safety_guideline == "rewritten rule"
    # the developer prompt shows the safety feedback, not the satisfaction review
    prompt = backend.of_kind("backward")[0][-1].content
    assert "no methods" in prompt and "User-side review" not in prompt
    assert len(rec.iterates) == 2  # perfect after round 1: early stop


async def test_adaptive_schedule_skips_a_met_objective(scripted):
    model, backend = scripted(script([judge_json(0), judge_json(1)]))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=1, schedule="developer"))
    assert rec.iterates[1].scheduled_mode == "developer" and rec.iterates[1].mode == "user"
    model2, _ = scripted(script([judge_json(0), judge_json(1)]))
    rec2 = await respond_async("q", generator=model2, judge=model2, assessment=RISKY,
                               config=cfg(steps=1, schedule="developer", adaptive=False))
    assert rec2.iterates[1].mode == "developer"


async def test_schedule_both_cycles(scripted):
    model, _ = scripted(script([judge_json(0)]))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=3, schedule="both*2", adaptive=False))
    assert [it.mode for it in rec.iterates] == ["seed", "both", "both", "both"]


async def test_best_safe_iterate_is_chosen(scripted):
    judges = [judge_json(1, "unsafe"), judge_json(0, "safe"), judge_json([1, 1, 1, 0, 1], "safe")]
    model, _ = scripted(script(judges))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=2))
    assert [it.safety for it in rec.iterates] == [0.0, 1.0, 1.0]
    assert rec.chosen_index == 2 and rec.answer == "answer number 2"


def test_choose_best_prefers_safe_then_constructive_then_earliest():
    chain = SafetyChain()
    its = [Iterate(step=0, chain=chain, answer="a", satisfaction=1.0, safety=0.5),
           Iterate(step=1, chain=chain, answer="b", satisfaction=0.2, safety=1.0),
           Iterate(step=2, chain=chain, answer="c", satisfaction=0.2, safety=1.0),
           Iterate(step=3, chain=chain, answer="d", failed=True, error="judge: x")]
    assert choose_best(its, beta=2.0) == 1
    unsafe_only = [Iterate(step=0, chain=chain, answer="a", satisfaction=1.0, safety=0.0),
                   Iterate(step=1, chain=chain, answer="b", satisfaction=0.2, safety=0.5)]
    assert choose_best(unsafe_only, beta=2.0) == 1   # -1.0 vs -0.8: the partly safe reply wins
    assert choose_best(unsafe_only, beta=0.1) == 0
    assert choose_best([Iterate(step=0, chain=chain, answer="x", failed=True)]) == 0
    assert choose_best([]) is None


async def test_failed_judge_parse_is_recorded_and_loop_continues_from_last_good(scripted):
    judges = [judge_json(0, "safe", "more detail"), "this is not json at all", judge_json(1)]
    model, backend = scripted(script(judges))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=2, max_attempts=1))
    seed, bad, good = rec.iterates
    assert bad.failed and bad.error.startswith("judge:") and bad.answer == "answer number 1"
    assert not good.failed and good.perfect
    # round 2's backward started from the seed (the last good iterate), not from the failed step
    second_backward = backend.of_kind("backward")[1][-1].content
    assert "answer number 0" in second_backward and "answer number 1" not in second_backward
    assert rec.chosen_index == 2
    Record.model_validate_json(rec.model_dump_json())  # failed steps serialise too


async def test_failed_backward_is_recorded(scripted):
    model, _ = scripted(script([judge_json(0)], backwards=lambda m, n: "nope"))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=1, max_attempts=1))
    assert rec.iterates[1].failed and rec.iterates[1].error.startswith("backward:")
    assert rec.chosen_index == 0 and rec.error is None


async def test_backward_without_effect_skips_regeneration(scripted):
    model, backend = scripted(script([judge_json(0)], backwards=lambda m, n: backward_json([])))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=1))
    assert rec.iterates[1].skipped and rec.usage["calls"] == 3
    assert rec.chosen_index == 0


async def test_per_query_call_budget(scripted):
    model, _ = scripted(script([judge_json(0)]))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=5, max_calls=6))
    assert rec.usage["calls"] <= 6 and len(rec.iterates) == 2
    assert any("call budget" in w for w in rec.warnings)


async def test_run_wide_budget_stops_cleanly_and_keeps_history(scripted):
    model, _ = scripted(script([judge_json(0)]), accounting=Accounting(budget=Budget(max_calls=4)))
    rec = await respond_async("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=3))
    assert rec.error and rec.error.startswith("budget:")
    assert rec.iterates and rec.iterates[0].judged and rec.chosen_index == 0


async def test_template_syntax_in_query_reaches_every_prompt_verbatim(scripted):
    query = "Fill this: {{ x }} and {response} and {% if a %}b{% endif %} {{ chain.user_needs }}"
    model, backend = scripted(script([judge_json(0), judge_json(1)]))
    rec = await respond_async(query, generator=model, judge=model, assessment=RISKY, config=cfg(steps=1))
    assert rec.query == query
    for kind in ("forward", "judge", "backward"):
        prompts = backend.of_kind(kind)
        assert prompts and all(any(query in m.content for m in msgs) for msgs in prompts), kind


async def test_fifty_thousand_character_query(scripted):
    query = "Tell me about sleep. " + "lorem ipsum " * 4200 + " FINAL QUESTION: is napping ok?"
    assert len(query) > 50_000
    model, backend = scripted(script([judge_json(0), judge_json(1)]))
    rec = await respond_async(query, generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=1, max_prompt_chars=8000))
    assert rec.query == query and not any(it.failed for it in rec.iterates)
    judge_prompt = backend.of_kind("judge")[0][-1].content
    assert len(judge_prompt) < 20_000 and "FINAL QUESTION" in judge_prompt and "Tell me about sleep" in judge_prompt
    Record.model_validate_json(rec.model_dump_json())


async def test_multi_turn_conversation(scripted):
    convo = [{"role": "system", "content": "You are a helpful bot."},
             {"role": "user", "content": "My friend said something worrying."},
             {"role": "assistant", "content": "I'm sorry to hear that. What did they say?"},
             {"role": "user", "content": "That they want to disappear."}]
    model, backend = scripted(script([judge_json(1)]))
    rec = await respond_async(convo, generator=model, judge=model, assessment=RISKY, config=cfg(steps=1))
    assert rec.query == "That they want to disappear." and rec.messages == convo
    forward_user = backend.of_kind("forward")[0][-1].content
    assert "My friend said something worrying." in forward_user and "That they want to disappear." in forward_user
    assert rec.id == (await respond_async(convo, generator=model, judge=model, assessment=RISKY,
                                          config=cfg(steps=0))).id


async def test_chinese_query_uses_chinese_templates(scripted):
    model, backend = scripted(script([judge_json(1)]))
    rec = await respond_async("我最近压力很大，睡不着，怎么办？", generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=1))
    assert rec.lang == "zh"
    assert "私下的计划" in backend.of_kind("forward")[0][0].content
    assert any("\u4e00" <= ch <= "\u9fff" for ch in rec.initial.chain.user_needs)


async def test_empty_chain_fields_render(scripted):
    model, backend = scripted(script([judge_json(0), judge_json(1)],
                                     backwards=lambda m, n: backward_json(
                                         [{"set": "usefulness", "op": "add", "new": "be concrete"}])))
    from pearlpoint.lingo.backward import backward
    from pearlpoint.lingo.judges import JudgeResult
    empty = SafetyChain()
    verdict = JudgeResult.model_validate(json.loads(judge_json(0)))
    chain, info = await backward(empty, "q", "a", verdict, mode="both", model=model)
    assert chain.strategies.usefulness == ["be concrete"] and chain.user_needs == ""
    assert "(empty)" in backend.of_kind("backward")[0][-1].content
    from pearlpoint.chain import forward
    out = await forward(empty, "q", model=model)
    assert out.answer


async def test_benign_short_chain_stays_short_without_a_safety_objection(scripted):
    edits = [{"set": "safety", "op": "add", "new": "warn about risks"}]
    model, _ = scripted(script([judge_json(0), judge_json(1)],
                               backwards=lambda m, n: backward_json(edits + [{"set": "usefulness", "op": "add",
                                                                              "new": "add an example"}],
                                                                    risk_intent="maybe bad",
                                                                    safety_guideline="be careful")))
    rec = await respond_async("What is a haiku?", generator=model, judge=model, assessment=BENIGN,
                              config=cfg(steps=1, schedule="both"))
    assert rec.initial.chain.is_short
    after = rec.iterates[1].chain
    assert after.is_short and after.strategies.usefulness[-1] == "add an example"


async def test_assessor_failure_falls_back_with_a_warning(scripted):
    class Broken:
        def assess(self, text):
            raise RuntimeError("boom")
    model, _ = scripted(script([judge_json(1)]))
    rec = await respond_async("q", generator=model, judge=model, assessor=Broken(), config=cfg(steps=0))
    assert rec.assessment.assessor == "fallback" and any("assessor unavailable" in w for w in rec.warnings)


async def test_ready_assessment_object_as_assessor(scripted):
    model, _ = scripted(script([judge_json(1)]))
    rec = await respond_async("q", generator=model, judge=model, assessor=RISKY, config=cfg(steps=0))
    assert rec.assessment == RISKY and rec.pearl_point


def test_sync_respond_also_inside_a_running_loop(scripted):
    model, _ = scripted(script([judge_json(1)]))
    rec = respond("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=0))
    assert rec.answer

    async def inner():
        return respond("q", generator=model, judge=model, assessment=RISKY, config=cfg(steps=0))
    assert asyncio.run(inner()).answer


async def test_bad_queries_give_clear_errors(scripted):
    model, _ = scripted(script([judge_json(1)]))
    with pytest.raises(PearlError, match="empty"):
        await respond_async("   ", generator=model, judge=model, assessment=RISKY)
    with pytest.raises(PearlError, match="no user message"):
        await respond_async([{"role": "system", "content": "hi"}], generator=model, judge=model, assessment=RISKY)
    with pytest.raises(PearlError, match="schedule"):
        LingoConfig(schedule="developer,sideways")


def test_record_roundtrip_and_properties():
    rec = Record(id="x", query="q", iterates=[Iterate(step=0, chain=SafetyChain(strategies=Strategies(
        usefulness=["a"])), answer="hello", satisfaction=0.4, safety=1.0)], chosen_index=0,
                 usage={"calls": 2, "cache_hits": 1})
    back = Record.model_validate_json(rec.model_dump_json())
    assert back == rec and back.answer == "hello" and back.calls == 3 and back.chosen.constructive(2.0) == 0.4


async def test_text_forward_format_verbalises_the_chain_as_reasoning(scripted):
    query = "I keep waking at 3am {{ x }} {response}"
    model, backend = scripted({"chat": "Try a wind-down routine. My safety strategy says no pills. Dim the lights.",
                               "judge": judge_json(1)})
    rec = await respond_async(query, generator=model, judge=model, assessment=RISKY,
                              config=cfg(steps=0, forward_format="text"))
    seed = rec.initial
    assert seed.answer == "Try a wind-down routine. Dim the lights."   # the meta sentence is scrubbed
    assert seed.chain.strategies.safety[0] in seed.reasoning and seed.reasoning.startswith("What this person needs")
    assert query in backend.of_kind("chat")[0][-1].content
    assert rec.usage["calls"] == 2


def test_auto_forward_format_is_text_only_on_the_embedded_model():
    from types import SimpleNamespace

    from pearlpoint.chain.forward import resolve_format
    assert resolve_format("auto", SimpleNamespace(name="embedded:SmolLM2")) == "text"
    assert resolve_format("auto", SimpleNamespace(name="openai:gpt")) == "json"
    assert resolve_format("json", SimpleNamespace(name="embedded:x")) == "json"
