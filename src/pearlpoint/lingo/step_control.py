"""Step-size control for the backward step, enforced in code rather than trusted to the model.

A textual gradient step may add, remove or change AT MOST ONE strategy per set (safety,
usefulness). The model may propose any number of edits; the first one that actually changes a set
wins, the rest are recorded as dropped. Small steps keep the optimiser from rewriting a working
chain wholesale after one bad verdict (the same reason a numeric optimiser clips its step).

The reference implementation's merge function had its arguments swapped, so a proposed new strategy
was silently discarded. Here the current list is always the base and the edit is applied on top.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from pearlpoint.chain.schema import (
    MAX_STRATEGIES_PER_SET,
    SafetyChain,
    Strategies,
    bounded_text,
    clean_phrase,
    phrase_key,
)

SetName = Literal["safety", "usefulness"]
SET_NAMES: tuple[SetName, SetName] = ("safety", "usefulness")


class StrategyEdit(BaseModel):
    """One proposed edit. ``old`` names an existing strategy (remove/change); ``new`` the new text."""

    set: SetName = Field(description="which strategy list: safety or usefulness")
    op: Literal["add", "remove", "change"]
    old: bounded_text(100) = Field("", description="the existing strategy to remove or change; empty for add")  # type: ignore[valid-type]
    new: bounded_text(100) = Field("", description="the new strategy phrase; empty for remove")  # type: ignore[valid-type]

    @field_validator("set", mode="before")
    @classmethod
    def _set(cls, v: object) -> object:
        s = str(v or "").strip().casefold()
        if s.startswith(("safe", "安全")):
            return "safety"
        if s.startswith(("use", "help", "有用", "帮助")):
            return "usefulness"
        return v

    @field_validator("op", mode="before")
    @classmethod
    def _op(cls, v: object) -> object:
        s = str(v or "").strip().casefold()
        aliases = {"insert": "add", "append": "add", "new": "add", "delete": "remove", "drop": "remove",
                   "replace": "change", "edit": "change", "modify": "change", "update": "change",
                   "rewrite": "change", "增加": "add", "添加": "add", "删除": "remove", "修改": "change"}
        return aliases.get(s, s)


class AppliedEdit(BaseModel):
    set: SetName
    op: Literal["add", "remove", "change"]
    old: str = ""
    new: str = ""
    reason: str = ""


def _tokens(text: str) -> set[str]:
    key = phrase_key(text)
    words = set(key.split())
    # Chinese has no spaces: fall back to character bigrams so overlap still means something.
    if len(words) <= 1 and re.search(r"[\u4e00-\u9fff]", key):
        compact = key.replace(" ", "")
        words = {compact[i:i + 2] for i in range(max(1, len(compact) - 1))}
    return words


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of word (or CJK bigram) sets, 1.0 for identical normalised phrases."""
    if phrase_key(a) == phrase_key(b):
        return 1.0
    ta, tb = _tokens(a), _tokens(b)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / len(ta | tb)


def find_match(items: list[str], target: str, threshold: float = 0.5) -> int | None:
    """Index of the existing strategy the model meant by ``target`` (tolerates small rewordings)."""
    if not target.strip() or not items:
        return None
    scores = [similarity(item, target) for item in items]
    best = max(range(len(items)), key=lambda i: scores[i])
    return best if scores[best] >= threshold else None


def apply_edit(current: list[str], edit: StrategyEdit) -> tuple[list[str], AppliedEdit | None, str]:
    """Apply ONE edit to a copy of ``current``. Returns (new list, what was done or None, why not)."""
    items = list(current)
    new = clean_phrase(edit.new)
    keys = [phrase_key(x) for x in items]
    if edit.op == "add":
        if not phrase_key(new):
            return items, None, "add without text"
        if phrase_key(new) in keys:
            return items, None, "already present"
        if len(items) >= MAX_STRATEGIES_PER_SET:
            return items, None, f"set already holds {MAX_STRATEGIES_PER_SET} strategies"
        items.append(new)
        return items, AppliedEdit(set=edit.set, op="add", new=new), ""
    idx = find_match(items, edit.old)
    if edit.op == "remove":
        if idx is None:
            return items, None, "strategy to remove not found"
        removed = items.pop(idx)
        return items, AppliedEdit(set=edit.set, op="remove", old=removed), ""
    # change
    if not phrase_key(new):
        return items, None, "change without new text"
    if phrase_key(new) in keys:
        return items, None, "new text already present"
    if idx is None:
        # The model named a strategy that is not there: treat the edit as an addition, still one step.
        if len(items) >= MAX_STRATEGIES_PER_SET:
            return items, None, "strategy to change not found and set is full"
        items.append(new)
        return items, AppliedEdit(set=edit.set, op="add", new=new, reason="change target not found"), ""
    old = items[idx]
    items[idx] = new
    return items, AppliedEdit(set=edit.set, op="change", old=old, new=new), ""


class StepResult(BaseModel):
    strategies: Strategies
    applied: list[AppliedEdit] = Field(default_factory=list)
    dropped: list[dict] = Field(default_factory=list)


def limit_step(strategies: Strategies, edits: list[StrategyEdit], *,
               frozen: frozenset[str] | set[str] = frozenset()) -> StepResult:
    """Apply at most one effective edit per set; edits to ``frozen`` sets are dropped."""
    sets = {name: strategies.get(name) for name in SET_NAMES}
    done: set[str] = set()
    applied: list[AppliedEdit] = []
    dropped: list[dict] = []
    for edit in edits:
        if edit.set in frozen:
            dropped.append({**edit.model_dump(), "reason": "set frozen in this mode"})
            continue
        if edit.set in done:
            dropped.append({**edit.model_dump(), "reason": "step-size limit: one change per set"})
            continue
        new_items, result, why = apply_edit(sets[edit.set], edit)
        if result is None:
            dropped.append({**edit.model_dump(), "reason": why})
            continue
        sets[edit.set] = new_items
        applied.append(result)
        done.add(edit.set)
    return StepResult(strategies=Strategies(safety=sets["safety"], usefulness=sets["usefulness"]),
                      applied=applied, dropped=dropped)


def diff_as_edits(current: list[str], proposed: list[str], set_name: SetName) -> list[StrategyEdit]:
    """Turn a wholesale proposed list into edits (most similar removed/added pair first as a change).

    Used when a model returns a full rewritten list instead of edits: ``limit_step`` then keeps one.
    """
    cur_keys = {phrase_key(x) for x in current}
    prop_keys = {phrase_key(x) for x in proposed}
    added = [clean_phrase(x) for x in proposed if phrase_key(x) not in cur_keys and phrase_key(x)]
    removed = [x for x in current if phrase_key(x) not in prop_keys]
    edits: list[StrategyEdit] = []
    if added and removed:
        pairs = sorted(((similarity(r, a), i, j) for i, r in enumerate(removed) for j, a in enumerate(added)),
                       reverse=True)
        _, i, j = pairs[0]
        edits.append(StrategyEdit(set=set_name, op="change", old=removed[i], new=added[j]))
        added = [a for k, a in enumerate(added) if k != j]
        removed = [r for k, r in enumerate(removed) if k != i]
    edits += [StrategyEdit(set=set_name, op="add", new=a) for a in added]
    edits += [StrategyEdit(set=set_name, op="remove", old=r) for r in removed]
    return edits


def bounded_merge(current: list[str], proposed: list[str], set_name: SetName = "usefulness") -> list[str]:
    """Move ``current`` one step toward ``proposed``: the corrected version of the reference merge."""
    base = Strategies(**{set_name: current})
    result = limit_step(base, diff_as_edits(current, proposed, set_name))
    return result.strategies.get(set_name)


def count_changes(before: SafetyChain | Strategies, after: SafetyChain | Strategies) -> dict[str, int]:
    """Number of strategy changes per set between two chains (a change counts once)."""
    b = before.strategies if isinstance(before, SafetyChain) else before
    a = after.strategies if isinstance(after, SafetyChain) else after
    out = {}
    for name in SET_NAMES:
        edits = diff_as_edits(b.get(name), a.get(name), name)
        out[name] = len(edits)
    return out
