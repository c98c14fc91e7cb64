"""``solve(assessment) -> GameSolution``: the Pearl Point of one query, explained.

The severity comes from the policy (the category's rule), falling back to the assessment's own
severity when the category is unknown to the policy or the policy cannot be loaded.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import ValidationError

from pearlpoint.errors import InputError, PearlError
from pearlpoint.game.explain import AnticipatedTurn, Explanation, PredictedReaction
from pearlpoint.game.loader import load_payoffs
from pearlpoint.game.mip import solve_mixed
from pearlpoint.game.solution import (
    GameSolution,
    MixedCommitment,
    NextTurn,
    StrategyOutcome,
    TypeReaction,
)
from pearlpoint.game.solver import Game, PureResult, build_game, solve_pure
from pearlpoint.game.spec import Payoffs
from pearlpoint.game.two_stage import StatePlan, two_stage_game
from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior

PayoffsArg = Payoffs | str | os.PathLike[str] | None


@functools.lru_cache(maxsize=1)
def _configured_payoffs_file() -> str | None:
    """Settings.payoffs_file, read once per process: reading settings costs ~8 ms, a solve ~0.1 ms."""
    try:
        from pearlpoint.config import get_settings

        configured = get_settings().payoffs_file
    except Exception:  # noqa: BLE001 - settings are optional for a pure solve
        return None
    return str(configured) if configured else None


@functools.lru_cache(maxsize=1)
def _default_policy() -> Any:
    from pearlpoint.policy import get_policy

    return get_policy()


def reset_caches() -> None:
    """Forget the cached settings and policy (after changing PEARL_* variables or the policy file)."""
    _configured_payoffs_file.cache_clear()
    _default_policy.cache_clear()


def resolve_payoffs(payoffs: PayoffsArg = None) -> Payoffs:
    if isinstance(payoffs, Payoffs):
        return payoffs
    if payoffs is None:
        return load_payoffs(_configured_payoffs_file())
    return load_payoffs(payoffs)


def category_info(category: str, fallback_severity: int, policy: Any = None) -> tuple[str, int, dict[str, str]]:
    """(category id, severity, {en, zh} name) from the policy; the assessment's severity if unknown."""
    try:
        if policy is None:
            policy = _default_policy()
        cat = policy.find(category)
        return cat.id, int(cat.severity), {"en": cat.name, "zh": cat.name_zh or cat.name}
    except (ImportError, PearlError, KeyError, AttributeError):
        return category, int(fallback_severity), {"en": category, "zh": category}


def _posterior(payoffs: Payoffs, assessment: RiskAssessment | None,
               override: Mapping[str, float] | UserTypePosterior | None) -> dict[str, float]:
    if override is not None:
        raw = override.as_dict() if isinstance(override, UserTypePosterior) else dict(override)
    elif assessment is not None and "user_types" in assessment.model_fields_set:
        raw = assessment.user_types.as_dict()
    elif assessment is not None and assessment.user_types.as_dict() != UserTypePosterior().as_dict():
        raw = assessment.user_types.as_dict()
    else:
        raw = dict(payoffs.parameters.default_prior)
    unknown = [k for k in raw if k not in payoffs.type_ids]
    if unknown:
        raise InputError(f"unknown user type(s) {', '.join(unknown)} (known: {', '.join(payoffs.type_ids)})",
                         field="posterior")
    vals = {t: float(raw.get(t, 0.0)) for t in payoffs.type_ids}
    if any(v < 0 or not np.isfinite(v) for v in vals.values()):
        raise InputError("posterior probabilities must be finite and non-negative", field="posterior")
    total = sum(vals.values())
    if total <= 0:
        raise InputError("posterior probabilities sum to zero", field="posterior")
    return {t: v / total for t, v in vals.items()}


def solve(assessment: RiskAssessment | Mapping[str, Any] | None = None, payoffs: PayoffsArg = None,
          beta: float | None = None, *, alpha: float | None = None, gamma: float | None = None,
          posterior: Mapping[str, float] | UserTypePosterior | None = None, category: str | None = None,
          severity: int | None = None, budget: float | None = None, two_stage: bool = False,
          mixed: bool = False, policy: Any = None) -> GameSolution:
    """The Pearl Point for one assessed query.

    ``beta`` weighs risk against retention; None takes the payoff file's value (2.0 as shipped, the
    paper's headline setting).
    ``posterior``/``category``/``severity``/``budget`` override what the assessment says (the CLI's
    model-free mode). ``two_stage`` anticipates the user's next turn; ``mixed`` also solves the DOBSS
    MILP for a randomised policy (reported in ``.mixed``; the Pearl Point stays one strategy, because a
    chain is seeded from one).
    """
    spec = resolve_payoffs(payoffs)
    if assessment is None:
        ra = RiskAssessment()
    elif isinstance(assessment, RiskAssessment):
        ra = assessment
    else:
        try:
            ra = RiskAssessment.model_validate(dict(assessment))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(x) for x in first.get("loc", ())) or None
            raise InputError(f"not a valid risk assessment: {first.get('msg')}", field=field) from None
    if beta is None:
        beta = spec.parameters.beta
    for name, value in (("beta", beta), ("alpha", alpha), ("gamma", gamma), ("budget", budget)):
        if value is not None and (not np.isfinite(value) or value < 0):
            raise InputError(f"{name} must be a non-negative number, got {value}", field=name)
    cat_id, sev, cat_name = category_info(category or ra.category, ra.severity, policy)
    if severity is not None:
        sev = int(severity)
    if not 0 <= sev <= 4:
        raise InputError(f"severity must be 0-4, got {sev}", field="severity")
    post = _posterior(spec, ra if posterior is None else None, posterior)
    game = build_game(spec, post, sev, beta=beta, alpha=alpha, gamma=gamma, budget=budget)
    plans: list[StatePlan] | None = None
    if two_stage:
        game, plans = two_stage_game(game)
    result = solve_pure(game)
    return assemble(spec, game, result, cat_id=cat_id, cat_name=cat_name, post=post, plans=plans,
                    mixed=solve_mixed_commitment(spec, game, result) if mixed else None)


def solve_mixed_commitment(spec: Payoffs, game: Game, pure: PureResult) -> MixedCommitment:
    res = solve_mixed(game)
    if not res.feasible:  # budget unreachable even by mixing: report the pure fallback
        policy = {s: float(i == pure.chosen) for i, s in enumerate(spec.strategy_ids)}
        reactions = {t: spec.reaction_ids[pure.responses[ti, pure.chosen]] for ti, t in enumerate(spec.type_ids)}
        return MixedCommitment(policy=policy, expected_utility=float(pure.expected_utility[pure.chosen]),
                               expected_risk=float(pure.expected_risk[pure.chosen]), reactions=reactions,
                               feasible=False, pure_utility=float(pure.expected_utility[pure.chosen]),
                               solver_status=res.status)
    return MixedCommitment(
        policy={s: round(float(v), 12) for s, v in zip(spec.strategy_ids, res.policy, strict=True)},
        expected_utility=res.expected_utility, expected_risk=res.expected_risk,
        reactions={t: spec.reaction_ids[r] for t, r in zip(spec.type_ids, res.reactions, strict=True)},
        feasible=True, pure_utility=float(pure.expected_utility[pure.chosen]), solver_status=res.status)


def assemble(spec: Payoffs, game: Game, result: PureResult, *, cat_id: str, cat_name: dict[str, str],
             post: dict[str, float], plans: list[StatePlan] | None = None,
             mixed: MixedCommitment | None = None) -> GameSolution:
    """Turn the solver's arrays into the typed, explained solution."""
    types, strategies, reactions = spec.type_ids, spec.strategy_ids, spec.reaction_ids
    outcomes: list[StrategyOutcome] = []
    for si, s in enumerate(spec.strategies):
        by_type = {}
        retention = 0.0
        for ti, t in enumerate(types):
            r = int(result.responses[ti, si])
            retention += game.prior[ti] * game.retention[ti, si, r]
            by_type[t] = TypeReaction(
                type=t, probability=float(game.prior[ti]), reaction=reactions[r],
                user_utility=float(game.follower[ti, si, r]), leader_utility=float(game.leader[ti, si, r]),
                risk=float(game.risk[ti, si, r]), next_state=spec.reactions[r].next_state)
        outcomes.append(StrategyOutcome(
            id=s.id, label=s.label, rank=s.rank, expected_utility=float(result.expected_utility[si]),
            expected_risk=float(result.expected_risk[si]), expected_retention=float(retention), cost=s.cost,
            feasible=bool(result.feasible[si]), reactions=by_type))

    chosen = result.chosen
    next_turn = None
    if plans is not None:
        next_turn = []
        for ti, t in enumerate(types):
            r = int(result.responses[ti, chosen])
            state = spec.reactions[r].next_state
            if state is None:
                continue
            plan = next(p for p in plans if p.state == state)
            next_turn.append(NextTurn(
                type=t, reaction=reactions[r], state=state,
                posterior={u: float(v) for u, v in zip(types, plan.posterior, strict=True)},
                severity=plan.severity, planned_strategy=strategies[plan.strategy],
                planned_reaction=reactions[int(plan.reactions[ti])], leader_value=float(plan.leader_value[ti]),
                risk=float(plan.risk_value[ti])))
    explanation = _explain(spec, game, result, outcomes, cat_id, cat_name, two_stage=plans is not None)
    if next_turn:
        explanation.anticipation = [AnticipatedTurn(type=n.type, reaction=n.reaction, state=n.state,
                                                    planned_strategy=n.planned_strategy)
                                    for n in next_turn if post.get(n.type, 0.0) > 0]
    return GameSolution(
        pearl_point=strategies[chosen], chosen=spec.strategies[chosen], strategies=outcomes,
        infeasible=result.infeasible, explanation=explanation, beta=game.beta, alpha=game.alpha,
        gamma=game.gamma, posterior=post, category=cat_id, severity=game.severity, budget=game.budget,
        two_stage=plans is not None, next_turn=next_turn, mixed=mixed, payoffs_source=spec.source)


def _runner_up(result: PureResult, chosen: int) -> int | None:
    n = len(result.expected_utility)
    others = [i for i in range(n) if i != chosen]
    if not others:
        return None
    if result.infeasible:  # next safest
        return min(others, key=lambda i: (result.expected_risk[i], -result.expected_utility[i]))
    feasible = [i for i in others if result.feasible[i]]
    pool = feasible or others
    return max(pool, key=lambda i: (result.expected_utility[i], -result.expected_risk[i]))


def _explain(spec: Payoffs, game: Game, result: PureResult, outcomes: list[StrategyOutcome], cat_id: str,
             cat_name: dict[str, str], *, two_stage: bool) -> Explanation:
    chosen = result.chosen
    ru = _runner_up(result, chosen)
    labels: dict[str, dict[str, str]] = {}
    for group in (spec.strategies, spec.user_types, spec.reactions):
        for item in group:
            labels[item.id] = {"en": item.label, "zh": item.label_zh or item.label}

    def predicted(si: int) -> list[PredictedReaction]:
        o = outcomes[si]
        return [PredictedReaction(type=t, probability=r.probability, reaction=r.reaction, risk=r.risk)
                for t, r in o.reactions.items()]

    blocked = [spec.strategy_ids[i] for i in np.argsort(-result.expected_utility)
               if not result.feasible[i] and result.expected_utility[i] > result.expected_utility[chosen] + 1e-12]
    return Explanation(
        chosen=spec.strategy_ids[chosen], runner_up=spec.strategy_ids[ru] if ru is not None else None,
        chosen_utility=float(result.expected_utility[chosen]), chosen_risk=float(result.expected_risk[chosen]),
        runner_up_utility=float(result.expected_utility[ru]) if ru is not None else None,
        runner_up_risk=float(result.expected_risk[ru]) if ru is not None else None,
        runner_up_feasible=bool(result.feasible[ru]) if ru is not None else None,
        reactions=predicted(chosen), runner_up_reactions=predicted(ru) if ru is not None else [],
        blocked_by_budget=blocked, infeasible=result.infeasible, budget=game.budget, severity=game.severity,
        category=cat_id, category_name=cat_name, beta=game.beta, two_stage=two_stage, labels=labels)
