"""The issue's sanity cases with the shipped payoffs and the shipped policy, plus the solution's contract."""

from __future__ import annotations

import json

import pytest

from pearlpoint.game import GameSolution, solve, sweep_beta
from pearlpoint.game.sensitivity import BETA_GRID
from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior

REFUSALS = {"soft_refusal", "hard_refusal"}


def assessment(category: str, benign: float, vulnerable: float, malicious: float, **kw) -> RiskAssessment:
    return RiskAssessment(category=category, user_types=UserTypePosterior(
        benign=benign, vulnerable=vulnerable, malicious=malicious), **kw)


@pytest.mark.parametrize("category", ["illegal_drugs", "cybersecurity", "healthcare", "gambling"])
def test_benign_curiosity_gets_an_answer_never_a_refusal(category: str) -> None:
    sol = solve(assessment(category, 0.85, 0.10, 0.05))
    assert sol.pearl_point in {"full_answer", "safe_framing"}
    assert not sol.infeasible
    assert sol.outcome(sol.pearl_point).reactions["benign"].reaction == "accept_safely"


@pytest.mark.parametrize("beta", [1.0, 2.0, 3.0, 5.0, 10.0])
def test_distressed_user_gets_constructive_guidance_not_a_hard_refusal(beta: float) -> None:
    sol = solve(assessment("mental_health", 0.15, 0.80, 0.05), beta=beta)
    assert sol.severity == 4  # from the policy, not the assessment's default 0
    assert sol.pearl_point == "constructive_guidance"
    assert sol.pearl_point != "hard_refusal"
    assert sol.outcome("constructive_guidance").reactions["vulnerable"].reaction == "accept_safely"
    # the chosen strategy carries phrases that point to help
    assert any("help" in p or "resource" in p for p in sol.chosen.safety_phrases)


def test_distressed_user_is_never_hard_refused_at_any_beta() -> None:
    for beta in BETA_GRID:
        assert solve(assessment("mental_health", 0.15, 0.80, 0.05), beta=beta).pearl_point != "hard_refusal"


@pytest.mark.parametrize("category", ["violent_terror", "hazardous_materials", "bodily_harm"])
def test_clear_malicious_request_for_severe_harm_is_refused(category: str) -> None:
    sol = solve(assessment(category, 0.10, 0.05, 0.85, intent="malicious_instruction"))
    assert sol.severity == 4
    assert sol.pearl_point in REFUSALS
    assert not sol.infeasible
    # everything more forthcoming is over the budget
    for o in sol.strategies:
        if o.id in {"full_answer", "safe_framing", "correct_premise"}:
            assert not o.feasible


def test_mixed_posterior_on_severe_category_gets_guidance_that_withholds_specifics() -> None:
    sol = solve(assessment("hazardous_materials", 0.45, 0.30, 0.25))
    assert sol.pearl_point == "constructive_guidance"
    assert sol.chosen.exposure < 0.5
    assert any("withhold" in p for p in sol.chosen.safety_phrases)
    # the harmful specifics would be misused: full and framed answers are over budget
    assert not sol.outcome("full_answer").feasible
    assert not sol.outcome("safe_framing").feasible


@pytest.mark.parametrize("category,post", [
    ("hazardous_materials", (0.45, 0.30, 0.25)),
    ("illegal_drugs", (0.60, 0.20, 0.20)),
    ("gambling", (0.60, 0.20, 0.20)),
    ("cybersecurity", (0.50, 0.10, 0.40)),
    ("mental_health", (0.30, 0.60, 0.10)),
    ("violent_terror", (0.20, 0.10, 0.70)),
])
def test_raising_beta_moves_toward_refusal_monotonically(category: str, post: tuple[float, float, float]) -> None:
    points = sweep_beta(assessment(category, *post))
    ranks = [p.rank for p in points]
    risks = [p.expected_risk for p in points]
    assert [p.beta for p in points] == list(BETA_GRID)
    assert ranks == sorted(ranks), f"{category}: {[p.pearl_point for p in points]}"
    assert all(a >= b - 1e-12 for a, b in zip(risks, risks[1:], strict=False))


def test_beta_sweep_actually_moves_for_a_moderate_category() -> None:
    points = sweep_beta(assessment("gambling", 0.60, 0.20, 0.20))
    assert points[0].rank < points[-1].rank
    assert points[0].pearl_point in {"full_answer", "safe_framing"}
    assert points[-1].pearl_point == "constructive_guidance"


def test_no_risk_category_gets_a_full_answer() -> None:
    sol = solve(RiskAssessment())
    assert sol.category == "none" and sol.severity == 0
    assert sol.pearl_point == "full_answer"


def test_infeasible_budget_falls_back_to_the_safest_and_flags_it() -> None:
    sol = solve(assessment("violent_terror", 0.10, 0.05, 0.85), budget=0.0)
    assert sol.infeasible
    safest = min(o.expected_risk for o in sol.strategies)
    assert sol.outcome(sol.pearl_point).expected_risk == pytest.approx(safest)
    assert "flagged" in sol.explanation.text("en")
    assert "复核" in sol.explanation.text("zh")


def test_strong_stackelberg_ties_go_to_the_leader() -> None:
    # the benign user is exactly indifferent between accepting and leaving satisfied under this override
    sol = solve(assessment("healthcare", 1.0, 0.0, 0.0),
                payoffs=_payoffs_with({"user_utility": {"benign": {"full_answer": {"accept_safely": 0.9,
                                                                                   "satisfied_leave": 0.9}}}}))
    assert sol.outcome("full_answer").reactions["benign"].reaction == "accept_safely"  # retention 1.0 > 0.8


def _payoffs_with(override: dict):
    from pearlpoint.game import payoffs_from_dict

    return payoffs_from_dict(override, name="override")


def test_solution_contract_and_json_round_trip() -> None:
    sol = solve(assessment("mental_health", 0.15, 0.80, 0.05), beta=2.0)
    assert sol.beta == 2.0
    assert set(sol.posterior) == {"benign", "vulnerable", "malicious"}
    assert sol.posterior["vulnerable"] == pytest.approx(0.8)
    assert sol.chosen.id == sol.pearl_point
    assert sol.chosen.steering["en"] and sol.chosen.steering["zh"]
    assert sol.chosen.usefulness_phrases and sol.chosen.safety_phrases
    assert len(sol.strategies) == 6
    for o in sol.strategies:
        assert set(o.reactions) == {"benign", "vulnerable", "malicious"}
        assert o.feasible == (o.expected_risk <= sol.budget + 1e-9)
    assert sol.next_turn is None
    again = GameSolution.model_validate_json(sol.model_dump_json())
    assert again.pearl_point == sol.pearl_point
    assert again.explanation.text("en") == sol.explanation.text("en")
    summary = json.loads(json.dumps(sol.summary()))
    assert summary["pearl_point"] == "constructive_guidance"
    assert {"id", "expected_utility", "expected_risk", "feasible"} <= set(summary["strategies"][0])
    assert summary["explanation"]["text"]


def test_explanation_names_reactions_and_runner_up_in_both_languages() -> None:
    sol = solve(assessment("mental_health", 0.15, 0.80, 0.05))
    ex = sol.explanation
    assert ex.chosen == "constructive_guidance"
    assert ex.runner_up is not None and ex.runner_up != ex.chosen
    assert ex.runner_up_utility is not None and ex.runner_up_utility <= ex.chosen_utility
    assert {r.type for r in ex.reactions} == {"benign", "vulnerable", "malicious"}
    en = ex.text("en")
    assert "Constructive guidance" in en and "vulnerable user (80%)" in en and "Runner-up" in en
    zh = ex.text("zh")
    assert "建设性引导" in zh and "次优策略" in zh and "脆弱用户（80%）" in zh
    assert ex.text("zh-CN") == zh


def test_severe_malicious_explanation_lists_what_the_budget_ruled_out() -> None:
    sol = solve(assessment("violent_terror", 0.10, 0.05, 0.85))
    assert "full_answer" in sol.explanation.blocked_by_budget or all(
        o.expected_utility <= sol.outcome(sol.pearl_point).expected_utility for o in sol.strategies)
    assert sol.explanation.text("en").count(".") >= 2


def test_two_stage_prefers_de_escalation_over_blocking() -> None:
    # a hostile-leaning crowd on a critical category, with risk weighted heavily: looking one turn
    # ahead, the blunt refusal's escalations cost more than a reply that gives people somewhere to go
    a = assessment("hazardous_materials", 0.40, 0.00, 0.60)
    one = solve(a, beta=5.0)
    two = solve(a, beta=5.0, two_stage=True)
    assert one.pearl_point == "hard_refusal"
    assert two.pearl_point != "hard_refusal"
    assert two.chosen.rank < one.chosen.rank
    assert two.two_stage and two.explanation.two_stage
    assert two.next_turn is not None
    for n in two.next_turn:
        assert n.state in {"retry", "escalation"}
        assert abs(sum(n.posterior.values()) - 1) < 1e-9


def test_two_stage_explanation_looks_one_turn_ahead() -> None:
    sol = solve(assessment("hazardous_materials", 0.8, 0.1, 0.1), two_stage=True)
    ahead = [n for n in sol.next_turn or [] if sol.posterior[n.type] > 0]
    assert ahead, "this case has a type whose reaction continues the conversation"
    assert "Looking one turn ahead" in sol.explanation.text("en")
    assert "预判下一轮" in sol.explanation.text("zh")
    assert {a.type for a in sol.explanation.anticipation} == {n.type for n in ahead}
    ended = solve(assessment("cybersecurity", 0.3, 0.3, 0.4), two_stage=True, beta=0.5)
    assert ended.next_turn == [] and "one turn ahead" not in ended.explanation.text("en")


def test_two_stage_escalation_state_is_more_hostile_and_more_severe() -> None:
    sol = solve(assessment("cybersecurity", 0.5, 0.2, 0.3), two_stage=True)
    from pearlpoint.game.loader import load_payoffs
    from pearlpoint.game.solver import build_game
    from pearlpoint.game.two_stage import plan_next_states

    game = build_game(load_payoffs(), sol.posterior, sol.severity, beta=2.0)
    plans = {p.state: p for p in plan_next_states(game)}
    assert plans["escalation"].posterior[2] > 0.3
    assert plans["escalation"].severity == 4
    assert plans["retry"].severity == 3


def test_mixed_commitment_is_reported_and_at_least_as_good_as_pure() -> None:
    sol = solve(assessment("illegal_drugs", 0.60, 0.20, 0.20), mixed=True)
    m = sol.mixed
    assert m is not None and m.feasible
    assert sum(m.policy.values()) == pytest.approx(1.0)
    assert m.expected_utility >= m.pure_utility - 1e-7
    assert m.expected_risk <= sol.budget + 1e-7


def test_severity_falls_back_to_the_assessment_for_an_unknown_category() -> None:
    sol = solve(RiskAssessment(category="not_in_policy", severity=3,
                               user_types=UserTypePosterior(benign=0.5, vulnerable=0.3, malicious=0.2)))
    assert sol.severity == 3


def test_bad_arguments_are_clear_errors() -> None:
    from pearlpoint.errors import PearlError

    with pytest.raises(PearlError, match="beta"):
        solve(RiskAssessment(), beta=-1)
    with pytest.raises(PearlError, match="unknown user type"):
        solve(RiskAssessment(), posterior={"benign": 0.5, "alien": 0.5})


# -- distress: the vulnerable type is mostly distressed on critical categories, mostly misinformed on
#    low ones (payoffs.yaml `distress`), so correcting the premise only suits the latter.

@pytest.mark.parametrize("category", ["mental_health", "bodily_harm"])
@pytest.mark.parametrize("beta", BETA_GRID)
def test_certain_distress_gets_guidance_not_a_correction(category: str, beta: float) -> None:
    # what the embedded assessor reports for "I want to end my life...": vulnerable ~ 1.0
    sol = solve(assessment(category, 0.0, 1.0, 0.0), beta=beta)
    assert sol.severity == 4
    assert sol.pearl_point == "constructive_guidance"
    assert sol.outcome("constructive_guidance").reactions["vulnerable"].reaction == "accept_safely"
    # corrected but not supported, a person in distress leaves for a worse source: over budget
    corrected = sol.outcome("correct_premise")
    assert corrected.reactions["vulnerable"].reaction == "migrate"
    assert not corrected.feasible
    assert any("help" in p or "resource" in p for p in sol.chosen.safety_phrases)


def test_certain_distress_gets_guidance_in_two_stage_and_mixed_solves_too() -> None:
    sol = solve(assessment("mental_health", 0.0, 1.0, 0.0), two_stage=True, mixed=True)
    assert sol.pearl_point == "constructive_guidance"
    assert sol.mixed is not None and sol.mixed.policy["correct_premise"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("category", ["common_sense_errors", "false_rumors"])
def test_misinformed_user_on_a_low_severity_topic_still_gets_the_premise_corrected(category: str) -> None:
    sol = solve(assessment(category, 0.0, 1.0, 0.0))
    assert sol.severity <= 2
    assert sol.pearl_point == "correct_premise"
    assert sol.outcome("correct_premise").reactions["vulnerable"].reaction == "accept_safely"


def test_distress_share_rises_with_severity_and_flips_the_reaction_to_a_correction() -> None:
    from pearlpoint.game import load_payoffs

    p = load_payoffs()
    shares = [p.distress_share(k) for k in range(5)]
    assert shares == sorted(shares) and shares[0] == 0.0 and shares[4] >= 0.8
    reactions = [solve(assessment("cult", 0.0, 1.0, 0.0), severity=k).outcome("correct_premise")
                 .reactions["vulnerable"].reaction for k in range(5)]
    assert reactions[:4] == ["accept_safely"] * 4 and reactions[4] == "migrate"
