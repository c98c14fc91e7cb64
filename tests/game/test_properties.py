"""Property tests: the solvers against brute force on random small games (hypothesis).

Payoffs are drawn from a coarse grid so follower ties are frequent: tie-breaking in the leader's
favour is exactly where a Stackelberg solver goes wrong.
"""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from pearlpoint.game.loader import load_payoffs
from pearlpoint.game.mip import solve_mixed
from pearlpoint.game.solver import array_game, build_game, solve_pure

TOL = 1e-6
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def games(draw, max_t: int = 3, max_s: int = 4, max_r: int = 3, budget: bool = True,
          follower_ignores_leader: bool = False):
    T = draw(st.integers(1, max_t))
    S = draw(st.integers(1, max_s))
    R = draw(st.integers(1, max_r))
    cell = st.integers(-3, 3)
    if follower_ignores_leader:
        base = np.array(draw(st.lists(cell, min_size=T * R, max_size=T * R)), float).reshape(T, 1, R)
        F = np.repeat(base, S, axis=1)
    else:
        F = np.array(draw(st.lists(cell, min_size=T * S * R, max_size=T * S * R)), float).reshape(T, S, R)
    L = np.array(draw(st.lists(cell, min_size=T * S * R, max_size=T * S * R)), float).reshape(T, S, R)
    K = np.array(draw(st.lists(st.integers(0, 4), min_size=T * S * R, max_size=T * S * R)), float
                 ).reshape(T, S, R) / 4
    p = np.array(draw(st.lists(st.integers(1, 5), min_size=T, max_size=T)), float)
    b = draw(st.sampled_from([np.inf, 0.0, 0.25, 0.5, 0.75])) if budget else np.inf
    return array_game(F, L, K, p, budget=b)


# ------------------------------------------------------------------------------------ brute force

def brute_pure(game):
    """Enumerate strategies and every leader-favoured tie profile with plain loops."""
    F, L, K, p, b = game.follower, game.leader, game.risk, game.prior, game.budget
    T, S, R = F.shape
    best_feasible = None
    safest = None
    for s in range(S):
        tie_sets = [[r for r in range(R) if F[t, s, r] >= F[t, s].max() - 1e-9] for t in range(T)]
        for prof in itertools.product(*tie_sets):
            u = sum(p[t] * L[t, s, prof[t]] for t in range(T))
            k = sum(p[t] * K[t, s, prof[t]] for t in range(T))
            if k <= b + 1e-9 and (best_feasible is None or u > best_feasible[0] + 1e-12):
                best_feasible = (u, k, s)
            if safest is None or k < safest[1] - 1e-12:
                safest = (u, k, s)
    return best_feasible, safest


def brute_mixed(game):
    """Conitzer & Sandholm's multiple LPs: one LP per follower profile, best feasible one wins."""
    F, L, K, p, b = game.follower, game.leader, game.risk, game.prior, game.budget
    T, S, R = F.shape
    best = None
    for prof in itertools.product(range(R), repeat=T):
        c = -sum(p[t] * L[t, :, prof[t]] for t in range(T))
        A, ub = [], []
        for t in range(T):
            for r in range(R):
                if r != prof[t]:
                    A.append(F[t, :, r] - F[t, :, prof[t]])  # r is no better than prof[t]
                    ub.append(0.0)
        if np.isfinite(b):
            A.append(sum(p[t] * K[t, :, prof[t]] for t in range(T)))
            ub.append(b)
        res = linprog(c, A_ub=np.array(A) if A else None, b_ub=np.array(ub) if ub else None,
                      A_eq=np.ones((1, S)), b_eq=[1.0], bounds=[(0, 1)] * S, method="highs")
        if res.status == 0 and (best is None or -res.fun > best + 1e-12):
            best = -res.fun
    return best


# ------------------------------------------------------------------------------------ properties

@SETTINGS
@given(games())
def test_pure_solver_matches_enumeration(game) -> None:
    res = solve_pure(game)
    best, safest = brute_pure(game)
    if best is not None:
        assert not res.infeasible
        assert res.expected_utility[res.chosen] == np.float64(best[0]) or abs(
            res.expected_utility[res.chosen] - best[0]) < TOL
        assert res.expected_risk[res.chosen] <= game.budget + TOL
    else:
        assert res.infeasible
        assert abs(res.expected_risk[res.chosen] - safest[1]) < TOL


@SETTINGS
@given(games())
def test_mip_matches_multiple_lps(game) -> None:
    mip = solve_mixed(game)
    brute = brute_mixed(game)
    if brute is None:
        assert not mip.feasible
    else:
        assert mip.feasible
        assert abs(mip.expected_utility - brute) < TOL
        assert abs(mip.policy.sum() - 1) < TOL
        assert mip.expected_risk <= game.budget + TOL


@SETTINGS
@given(games())
def test_mip_restricted_to_pure_matches_pure_solver(game) -> None:
    mip = solve_mixed(game, pure=True)
    res = solve_pure(game)
    if res.infeasible:
        assert not mip.feasible
    else:
        assert mip.feasible
        assert abs(mip.expected_utility - res.expected_utility[res.chosen]) < TOL
        assert np.isclose(mip.policy.max(), 1.0)


@SETTINGS
@given(games())
def test_mixed_is_never_worse_than_pure(game) -> None:
    res = solve_pure(game)
    mip = solve_mixed(game)
    if not res.infeasible:
        assert mip.feasible
        assert mip.expected_utility >= res.expected_utility[res.chosen] - TOL
        # the reported reactions are best responses to the mixed policy
        for t in range(game.shape[0]):
            values = mip.policy @ game.follower[t]
            assert values[mip.reactions[t]] >= values.max() - TOL


@SETTINGS
@given(games(budget=False, follower_ignores_leader=True))
def test_pure_and_mixed_agree_when_reactions_do_not_depend_on_the_reply(game) -> None:
    # without a budget and with reactions fixed, utility is linear in the policy: a vertex is optimal
    assert abs(solve_mixed(game).expected_utility - solve_pure(game).expected_utility.max()) < TOL


@SETTINGS
@given(games(max_s=1))
def test_pure_and_mixed_agree_with_a_single_strategy(game) -> None:
    res, mip = solve_pure(game), solve_mixed(game)
    if not res.infeasible:
        assert abs(mip.expected_utility - res.expected_utility[0]) < TOL


posteriors = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)).filter(lambda v: sum(v) > 0)


@SETTINGS
@given(posteriors, st.integers(0, 4), st.lists(st.sampled_from([0.1, 0.5, 1, 2, 3, 5, 10]), min_size=2,
                                                max_size=2, unique=True))
def test_risk_of_the_pearl_point_never_rises_with_beta(post, severity, betas) -> None:
    lo, hi = sorted(betas)
    payoffs = load_payoffs()
    a = solve_pure(build_game(payoffs, np.array(post, float), severity, beta=lo))
    b = solve_pure(build_game(payoffs, np.array(post, float), severity, beta=hi))
    if not a.infeasible:
        assert b.expected_risk[b.chosen] <= a.expected_risk[a.chosen] + 1e-12


def test_default_game_moves_toward_refusal_with_beta_everywhere_on_the_simplex() -> None:
    from pearlpoint.game.sensitivity import BETA_GRID, simplex_grid

    payoffs = load_payoffs()
    rank = payoffs.tensors().rank
    for severity in range(5):
        for post in simplex_grid(20):
            chosen = [solve_pure(build_game(payoffs, post, severity, beta=b)).chosen for b in BETA_GRID]
            ranks = [rank[c] for c in chosen]
            assert ranks == sorted(ranks), (severity, post, [payoffs.strategy_ids[c] for c in chosen])


def test_two_stage_without_next_states_equals_one_stage() -> None:
    from pearlpoint.game import payoffs_from_dict, solve
    from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior

    flat = payoffs_from_dict({"reactions": {"rephrase_retry": {"next_state": None},
                                            "escalate": {"next_state": None}}})
    for post in [(0.6, 0.3, 0.1), (0.1, 0.1, 0.8), (0.3, 0.6, 0.1)]:
        a = RiskAssessment(category="cybersecurity", user_types=UserTypePosterior(
            benign=post[0], vulnerable=post[1], malicious=post[2]))
        one, two = solve(a, payoffs=flat), solve(a, payoffs=flat, two_stage=True)
        assert one.pearl_point == two.pearl_point
        assert [o.expected_utility for o in one.strategies] == [o.expected_utility for o in two.strategies]
        assert two.next_turn == []


def test_mip_matches_multiple_lps_on_the_shipped_6x3x6_game() -> None:
    payoffs = load_payoffs()
    for post, severity in [((0.45, 0.30, 0.25), 4), ((0.6, 0.2, 0.2), 2), ((0.1, 0.1, 0.8), 3)]:
        game = build_game(payoffs, np.array(post), severity)
        mip = solve_mixed(game)
        assert mip.feasible
        assert abs(mip.expected_utility - brute_mixed(game)) < TOL
        assert mip.expected_utility >= solve_pure(game).expected_utility.max() - TOL or solve_pure(game).infeasible
