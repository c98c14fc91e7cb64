"""Why the Pearl Point was chosen, as structured fields and as a paragraph in English or Chinese.

The structured part feeds the safety chain's reasoning; ``text(lang)`` is for people (CLI, reports).
Labels are stored inside the object so a round trip through JSON still renders the text.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class PredictedReaction(BaseModel):
    type: str
    probability: float
    reaction: str
    risk: float = 0.0


class AnticipatedTurn(BaseModel):
    type: str
    reaction: str
    state: str
    planned_strategy: str


class Explanation(BaseModel):
    chosen: str
    runner_up: str | None = None
    chosen_utility: float
    chosen_risk: float
    runner_up_utility: float | None = None
    runner_up_risk: float | None = None
    runner_up_feasible: bool | None = None
    reactions: list[PredictedReaction] = Field(default_factory=list, description="each type's reaction to the chosen strategy")
    runner_up_reactions: list[PredictedReaction] = Field(default_factory=list)
    blocked_by_budget: list[str] = Field(default_factory=list,
                                         description="strategies with a higher utility whose risk exceeds the budget")
    infeasible: bool = False
    budget: float
    severity: int
    category: str
    category_name: dict[str, str] = Field(default_factory=dict)
    beta: float
    two_stage: bool = False
    anticipation: list[AnticipatedTurn] = Field(default_factory=list,
                                                description="two-stage: where each type's reaction leads next")
    labels: dict[str, dict[str, str]] = Field(default_factory=dict, description="id -> {en, zh} label")

    def _label(self, key: str, lang: str) -> str:
        names = self.labels.get(key, {})
        return names.get(lang) or names.get("en") or key

    def text(self, lang: str = "en") -> str:
        """A readable paragraph: the choice, each type's predicted reaction, the runner-up, what was ruled out."""
        lang = "zh" if str(lang).lower().startswith("zh") else "en"
        return _render_zh(self) if lang == "zh" else _render_en(self)


def _pct(p: float) -> str:
    return f"{100 * p:.0f}%"


def _diff(e: Explanation) -> list[tuple[str, str, str]]:
    """(type, chosen reaction, runner-up reaction) where they differ, for types with weight."""
    ru = {r.type: r for r in e.runner_up_reactions}
    out = []
    for r in e.reactions:
        other = ru.get(r.type)
        if other is not None and other.reaction != r.reaction and r.probability > 0:
            out.append((r.type, r.reaction, other.reaction))
    return out


def _render_en(e: Explanation) -> str:
    L = lambda k: e._label(k, "en")  # noqa: E731
    cat = e.category_name.get("en") or e.category
    parts = []
    where = f"category {cat}, severity {e.severity}, beta {e.beta:g}" + (", two turns ahead" if e.two_stage else "")
    if e.infeasible:
        parts.append(
            f"No strategy keeps the expected risk within the budget of {e.budget:.3f} ({where}); "
            f"{L(e.chosen)} is the safest available (expected risk {e.chosen_risk:.3f}, "
            f"utility {e.chosen_utility:.3f}) and is flagged for review.")
    else:
        parts.append(
            f"Pearl Point: {L(e.chosen)}. It has the highest constructive utility ({e.chosen_utility:.3f}) "
            f"among the strategies whose expected risk ({e.chosen_risk:.3f} here) stays within the budget "
            f"of {e.budget:.3f} ({where}).")
    react = "; ".join(f"a {L(r.type).lower()} user ({_pct(r.probability)}) is expected to {L(r.reaction).lower()}"
                      for r in e.reactions if r.probability > 0)
    if react:
        parts.append(f"Predicted reactions: {react}.")
    if e.runner_up is not None:
        status = "" if e.runner_up_feasible else ", over the budget"
        sentence = (f"Runner-up: {L(e.runner_up)} (utility {e.runner_up_utility:.3f}, "
                    f"risk {e.runner_up_risk:.3f}{status})")
        diffs = _diff(e)
        if diffs:
            sentence += "; under it " + "; ".join(
                f"a {L(t).lower()} user would {L(b).lower()} rather than {L(a).lower()}" for t, a, b in diffs)
        parts.append(sentence + ".")
    if e.anticipation:
        parts.append("Looking one turn ahead: " + "; ".join(
            f"a {L(a.type).lower()} user who chooses to {L(a.reaction).lower()} would next get "
            f"{L(a.planned_strategy)}" for a in e.anticipation) + ".")
    if e.blocked_by_budget:
        names = ", ".join(L(s) for s in e.blocked_by_budget)
        parts.append(f"{names} would score higher but exceed{'s' if len(e.blocked_by_budget) == 1 else ''} "
                     f"the risk budget.")
    return " ".join(parts)


def _render_zh(e: Explanation) -> str:
    L = lambda k: e._label(k, "zh")  # noqa: E731
    cat = e.category_name.get("zh") or e.category_name.get("en") or e.category
    where = f"类别：{cat}，严重程度 {e.severity}，beta = {e.beta:g}" + ("，考虑两轮对话" if e.two_stage else "")
    parts = []
    if e.infeasible:
        parts.append(f"没有任何策略能把期望风险控制在预算 {e.budget:.3f} 以内（{where}）；"
                     f"选择风险最低的“{L(e.chosen)}”（期望风险 {e.chosen_risk:.3f}，效用 {e.chosen_utility:.3f}），"
                     f"并标记为需要复核。")
    else:
        parts.append(f"珍珠点：“{L(e.chosen)}”。在期望风险不超过预算 {e.budget:.3f} 的策略中，"
                     f"它的建设性效用最高（{e.chosen_utility:.3f}，期望风险 {e.chosen_risk:.3f}；{where}）。")
    react = "；".join(f"{L(r.type)}（{_pct(r.probability)}）预计会“{L(r.reaction)}”"
                     for r in e.reactions if r.probability > 0)
    if react:
        parts.append(f"预测的用户反应：{react}。")
    if e.runner_up is not None:
        status = "" if e.runner_up_feasible else "，超出风险预算"
        sentence = f"次优策略：“{L(e.runner_up)}”（效用 {e.runner_up_utility:.3f}，风险 {e.runner_up_risk:.3f}{status}）"
        diffs = _diff(e)
        if diffs:
            sentence += "；在该策略下，" + "；".join(
                f"{L(t)}会“{L(b)}”而不是“{L(a)}”" for t, a, b in diffs)
        parts.append(sentence + "。")
    if e.anticipation:
        parts.append("预判下一轮：" + "；".join(
            f"{L(a.type)}若“{L(a.reaction)}”，下一轮将得到“{L(a.planned_strategy)}”" for a in e.anticipation) + "。")
    if e.blocked_by_budget:
        names = "、".join(f"“{L(s)}”" for s in e.blocked_by_budget)
        parts.append(f"{names}的效用更高，但超出了风险预算。")
    return "".join(parts)
