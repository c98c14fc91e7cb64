"""Step-size control: at most one strategy added, removed or changed per set per step."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pearlpoint.chain import MAX_STRATEGIES_PER_SET, SafetyChain, Strategies
from pearlpoint.chain.schema import phrase_key
from pearlpoint.lingo.step_control import (
    StrategyEdit,
    apply_edit,
    bounded_merge,
    count_changes,
    diff_as_edits,
    limit_step,
)

BASE = Strategies(safety=["withhold dosage details", "point to a doctor"],
                  usefulness=["acknowledge the worry", "explain general effects"])


def test_merge_adds_the_new_strategy_and_keeps_the_old_ones():
    # The reference merge had its arguments swapped and dropped the new strategy.
    merged = bounded_merge(["acknowledge the worry", "explain general effects"],
                           ["acknowledge the worry", "explain general effects", "suggest a sleep diary"])
    assert merged == ["acknowledge the worry", "explain general effects", "suggest a sleep diary"]


def test_merge_moves_only_one_step_toward_a_wholesale_rewrite():
    current = ["a first phrase", "b second phrase", "c third phrase"]
    proposed = ["x new one", "y new two", "z new three", "w new four"]
    merged = bounded_merge(current, proposed)
    assert merged != current
    changes = diff_as_edits(current, merged, "usefulness")
    assert len(changes) == 1
    assert len(merged) == len(current)  # one change, not an add plus a remove


def test_only_first_effective_edit_per_set_is_applied():
    edits = [
        StrategyEdit(set="usefulness", op="add", new="give a sleep routine"),
        StrategyEdit(set="usefulness", op="add", new="list foods that help"),
        StrategyEdit(set="safety", op="remove", old="point to a doctor"),
        StrategyEdit(set="safety", op="add", new="mention side effects"),
    ]
    out = limit_step(BASE, edits)
    assert out.strategies.usefulness == [*BASE.usefulness, "give a sleep routine"]
    assert out.strategies.safety == ["withhold dosage details"]
    assert [a.op for a in out.applied] == ["add", "remove"]
    assert sorted(d["reason"] for d in out.dropped) == ["step-size limit: one change per set"] * 2


def test_no_op_edit_does_not_use_up_the_step():
    edits = [StrategyEdit(set="usefulness", op="add", new="Acknowledge the worry!"),  # duplicate
             StrategyEdit(set="usefulness", op="remove", old="nothing like this at all"),  # not found
             StrategyEdit(set="usefulness", op="change", old="explain general effects", new="explain effects simply")]
    out = limit_step(BASE, edits)
    assert out.strategies.usefulness == ["acknowledge the worry", "explain effects simply"]
    assert len(out.applied) == 1 and out.applied[0].op == "change"
    assert {d["reason"] for d in out.dropped} == {"already present", "strategy to remove not found"}


def test_change_finds_a_lightly_reworded_target():
    out = limit_step(BASE, [StrategyEdit(set="safety", op="change", old="withhold the dosage details",
                                         new="give no dosage numbers")])
    assert out.strategies.safety == ["give no dosage numbers", "point to a doctor"]


def test_change_of_unknown_target_becomes_one_add():
    items, applied, _ = apply_edit(["a b c"], StrategyEdit(set="safety", op="change", old="zzz", new="new thing"))
    assert items == ["a b c", "new thing"] and applied is not None and applied.op == "add"


def test_frozen_set_is_untouched():
    out = limit_step(BASE, [StrategyEdit(set="safety", op="remove", old="point to a doctor"),
                            StrategyEdit(set="usefulness", op="add", new="offer a checklist")],
                     frozen={"safety"})
    assert out.strategies.safety == BASE.safety
    assert out.strategies.usefulness[-1] == "offer a checklist"
    assert out.dropped[0]["reason"] == "set frozen in this mode"


def test_full_set_refuses_an_add():
    full = Strategies(usefulness=[f"phrase number {i}" for i in range(MAX_STRATEGIES_PER_SET)])
    out = limit_step(full, [StrategyEdit(set="usefulness", op="add", new="one too many")])
    assert out.strategies == full and not out.applied


def test_edit_aliases_from_sloppy_models():
    e = StrategyEdit.model_validate({"set": "Safety strategies", "op": "replace", "old": "a", "new": "b"})
    assert (e.set, e.op) == ("safety", "change")
    e = StrategyEdit.model_validate({"set": "有用性", "op": "删除", "old": "a"})
    assert (e.set, e.op) == ("usefulness", "remove")


def test_chinese_phrases_match_by_character_bigrams():
    s = Strategies(safety=["不提供具体剂量", "建议咨询医生"])
    out = limit_step(s, [StrategyEdit(set="safety", op="change", old="不提供具体的剂量", new="不给出任何剂量数字")])
    assert out.strategies.safety == ["不给出任何剂量数字", "建议咨询医生"]


def test_count_changes_on_chains():
    a = SafetyChain(strategies=BASE)
    b = a.with_strategies(usefulness=[*BASE.usefulness, "new one"])
    assert count_changes(a, b) == {"safety": 0, "usefulness": 1}


phrase = st.text(alphabet="abcdefgh ", min_size=1, max_size=12).filter(lambda s: phrase_key(s) != "")
edit = st.builds(StrategyEdit, set=st.sampled_from(["safety", "usefulness"]),
                 op=st.sampled_from(["add", "remove", "change"]), old=phrase, new=phrase)


@settings(max_examples=200, deadline=None)
@given(safety=st.lists(phrase, max_size=5), usefulness=st.lists(phrase, max_size=5),
       edits=st.lists(edit, max_size=8))
def test_property_at_most_one_change_per_set(safety, usefulness, edits):
    before = Strategies(safety=safety, usefulness=usefulness)
    out = limit_step(before, edits)
    for name in ("safety", "usefulness"):
        old = {phrase_key(x) for x in before.get(name)}
        new = {phrase_key(x) for x in out.strategies.get(name)}
        assert len(new - old) <= 1 and len(old - new) <= 1
        assert abs(len(new) - len(old)) <= 1
        assert len(out.strategies.get(name)) <= MAX_STRATEGIES_PER_SET
    assert len({a.set for a in out.applied}) == len(out.applied)
