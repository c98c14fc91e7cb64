"""Pure-strategy Strong Stackelberg equilibrium of the Bayesian leader-follower game.

The leader (the model) commits to one reply strategy; each follower type sees it and picks its best
reaction, breaking ties in the leader's favour (that is what makes the equilibrium *strong*). The
leader scores every strategy by its expected utility under the type posterior and keeps the best one
whose expected risk fits the safety budget of the category's severity. With 6 strategies, 3 types and
6 reactions this is a few hundred array cells: brute force over strategies is exact and sub-millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pearlpoint.game.spec import Payoffs

TIE_TOL = 1e-9


@dataclass(frozen=True)
class Game:
    """One concrete game: payoff arrays for a posterior, a severity and (alpha, beta, gamma)."""

    payoffs: Payoffs | None  # None for a game given directly as arrays (tests, benchmarks)
    prior: np.ndarray      # [T]
    follower: np.ndarray   # [T, S, R]
    leader: np.ndarray     # [T, S, R]
    risk: np.ndarray       # [T, S, R] severity-scaled harm
    retention: np.ndarray  # [T, S, R]
    budget: float
    severity: int
    alpha: float
    beta: float
    gamma: float
    rank: np.ndarray       # [S] leader tie-break: the more forthcoming strategy wins exact ties

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.follower.shape  # type: ignore[return-value]


def build_game(payoffs: Payoffs, prior: dict[str, float] | np.ndarray, severity: int, *,
               beta: float | None = None, alpha: float | None = None, gamma: float | None = None,
               budget: float | None = None, risk_scale: float | None = None) -> Game:
    """Assemble the arrays for one solve. ``risk_scale`` overrides the severity's scale (second turns)."""
    p = payoffs.parameters
    a = p.alpha if alpha is None else alpha
    b = p.beta if beta is None else beta
    g = p.gamma if gamma is None else gamma
    tens = payoffs.tensors()
    if isinstance(prior, dict):
        vec = np.array([float(prior.get(t, 0.0)) for t in payoffs.type_ids])
    else:
        vec = np.asarray(prior, dtype=float)
    total = vec.sum()
    vec = vec / total if total > 0 else np.full(len(vec), 1.0 / len(vec))
    scale = payoffs.severity_scale(severity) if risk_scale is None else risk_scale
    risk = scale * tens.harm
    leader = a * tens.retention - b * risk - g * tens.cost[None, :, None]
    # The follower's preferences depend on the severity only through the distress share (see spec.Distress).
    follower = tens.follower_at(payoffs.distress_share(severity))
    return Game(payoffs=payoffs, prior=vec, follower=follower, leader=leader, risk=risk,
                retention=tens.retention, budget=payoffs.budget(severity) if budget is None else budget,
                severity=severity, alpha=a, beta=b, gamma=g, rank=tens.rank)


def array_game(follower: np.ndarray, leader: np.ndarray, risk: np.ndarray, prior: np.ndarray,
               budget: float = np.inf) -> Game:
    """A game given directly by its arrays [T, S, R] (no payoff file): tests and benchmarks."""
    S = follower.shape[1]
    prior = np.asarray(prior, dtype=float)
    return Game(payoffs=None, prior=prior / prior.sum(), follower=np.asarray(follower, dtype=float),
                leader=np.asarray(leader, dtype=float), risk=np.asarray(risk, dtype=float),
                retention=np.zeros_like(follower, dtype=float), budget=float(budget), severity=0,
                alpha=1.0, beta=1.0, gamma=0.0, rank=np.arange(S))


@dataclass(frozen=True)
class PureResult:
    """Per-strategy evaluation and the chosen strategy index."""

    responses: np.ndarray         # [T, S] reaction index of each type to each strategy
    expected_utility: np.ndarray  # [S]
    expected_risk: np.ndarray     # [S]
    feasible: np.ndarray          # [S] bool
    chosen: int
    infeasible: bool              # no strategy met the budget; chosen is the safest


def best_responses(follower: np.ndarray, leader: np.ndarray) -> np.ndarray:
    """Each type's best reaction to each strategy; among the follower's ties, the leader's favourite."""
    best = follower.max(axis=2, keepdims=True)
    ties = follower >= best - TIE_TOL
    return np.where(ties, leader, -np.inf).argmax(axis=2)


def evaluate(follower: np.ndarray, leader: np.ndarray, risk: np.ndarray, prior: np.ndarray,
             budget: float = np.inf) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responses [T,S], expected leader utility [S] and expected risk [S] of every pure strategy.

    Ties favour the leader. Usually that is each type's reaction with the highest leader utility; but
    when that profile breaks the budget and another tie profile meets it, the leader prefers the
    feasible one (the same choice the DOBSS MILP makes), and when none meets it, the safest one.
    """
    resp = best_responses(follower, leader)
    idx = resp[:, :, None]
    lead = np.take_along_axis(leader, idx, axis=2)[:, :, 0]
    rsk = np.take_along_axis(risk, idx, axis=2)[:, :, 0]
    eu, er = prior @ lead, prior @ rsk
    if np.isfinite(budget):
        ties = follower >= follower.max(axis=2, keepdims=True) - TIE_TOL
        multi = (ties.sum(axis=2) > 1).any(axis=0)  # [S] strategies with a tie for some type
        for s in np.flatnonzero(multi & (er > budget + TIE_TOL)):
            resp[:, s], eu[s], er[s] = _tie_profile(ties[:, s], leader[:, s], risk[:, s], prior, budget)
    return resp, eu, er


def _tie_profile(ties: np.ndarray, leader: np.ndarray, risk: np.ndarray, prior: np.ndarray, budget: float
                 ) -> tuple[np.ndarray, float, float]:
    """Best tie profile for one strategy: max utility within budget, else min risk (then max utility)."""
    from itertools import product

    options = [np.flatnonzero(row) for row in ties]
    types = np.arange(len(options))
    best: tuple[tuple[float, float, float], np.ndarray, float, float] | None = None
    for combo in product(*options):
        r = np.array(combo)
        u = float(prior @ leader[types, r])
        k = float(prior @ risk[types, r])
        key = (1.0, u, -k) if k <= budget + TIE_TOL else (0.0, -k, u)  # feasible beats infeasible
        if best is None or key > best[0]:
            best = (key, r, u, k)
    assert best is not None
    return best[1], best[2], best[3]


def pick(expected_utility: np.ndarray, expected_risk: np.ndarray, budget: float, rank: np.ndarray
         ) -> tuple[int, np.ndarray, bool]:
    """Best feasible strategy (ties: lower risk, then more forthcoming); else the safest, flagged."""
    feasible = expected_risk <= budget + TIE_TOL
    order = np.lexsort((rank, np.round(expected_risk, 12), -np.round(expected_utility, 12)))
    if feasible.any():
        for i in order:
            if feasible[i]:
                return int(i), feasible, False
    # Nothing fits the budget: the least risky reply, the best of those by utility.
    order = np.lexsort((rank, -np.round(expected_utility, 12), np.round(expected_risk, 12)))
    return int(order[0]), feasible, True


def solve_pure(game: Game) -> PureResult:
    resp, eu, er = evaluate(game.follower, game.leader, game.risk, game.prior, game.budget)
    chosen, feasible, infeasible = pick(eu, er, game.budget, game.rank)
    return PureResult(resp, eu, er, feasible, chosen, infeasible)
