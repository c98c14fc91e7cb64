"""Mixed commitments: the exact Bayesian Stackelberg optimum as a DOBSS mixed-integer program.

The leader commits to a probability over strategies (a deployment policy users learn); each type
best-responds to the policy with one reaction. Variables (Paruchuri et al., 2008):
    x[s]       leader policy,                    sum_s x = 1
    z[t,s,r]   x[s] * q[t,r] (linearised),       sum_{s,r} z[t] = 1, sum_r z[t,s,:] = x[s]
    q[t,r]     binary: type t plays r,           sum_r q[t] = 1, sum_s z[t,:,r] = q[t,r]
    a[t]       type t's best value,              0 <= a[t] - sum_s F[t,s,r] x[s] <= (1 - q[t,r]) M
maximise sum_t p[t] sum_{s,r} L[t,s,r] z[t,s,r]  subject to  sum_t p[t] sum_{s,r} K[t,s,r] z[t,s,r] <= budget.
The MILP picks q among the follower's ties freely, which is exactly the strong (leader-favoured)
equilibrium. Solved with scipy's HiGHS (``scipy.optimize.milp``); the policy is then polished by one
LP with the reactions fixed, so it is a clean vertex rather than a branch-and-bound approximation. ``pure=True`` makes x binary,
which must reproduce the pure-strategy enumeration (a check the tests run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix

from pearlpoint.game.solver import Game


@dataclass(frozen=True)
class MixedResult:
    policy: np.ndarray      # [S]
    reactions: np.ndarray   # [T]
    expected_utility: float
    expected_risk: float
    feasible: bool
    status: str


def solve_mixed(game: Game, *, pure: bool = False, enforce_budget: bool = True,
                time_limit: float = 10.0) -> MixedResult:
    F, L, K, p = game.follower, game.leader, game.risk, game.prior
    T, S, R = F.shape
    nz = T * S * R
    ix, iz = 0, S               # x: S, z: T*S*R
    iq = iz + nz                # q: T*R
    ia = iq + T * R             # a: T
    n = ia + T
    z = iz + np.arange(nz).reshape(T, S, R)
    q = iq + np.arange(T * R).reshape(T, R)
    a = ia + np.arange(T)
    x = ix + np.arange(S)

    # Tight big-M per (type, reaction): the most that reaction can fall short of the best one.
    # (+1 keeps it away from zero, where HiGHS without presolve mis-reports degenerate models.)
    M = (F.max(axis=2, keepdims=True) - F).max(axis=1) + 1.0  # [T, R]

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lo: list[float] = []
    hi: list[float] = []
    r_i = 0

    def add(c: np.ndarray, v: np.ndarray, lb: float, ub: float) -> None:
        nonlocal r_i
        rows.append(np.full(len(c), r_i))
        cols.append(np.asarray(c))
        vals.append(np.asarray(v, dtype=float))
        lo.append(lb)
        hi.append(ub)
        r_i += 1

    add(x, np.ones(S), 1.0, 1.0)
    for t in range(T):
        add(z[t].ravel(), np.ones(S * R), 1.0, 1.0)
        for s in range(S):  # sum_r z[t,s,:] = x[s]
            add(np.append(z[t, s], x[s]), np.append(np.ones(R), -1.0), 0.0, 0.0)
        add(q[t], np.ones(R), 1.0, 1.0)
        for r in range(R):
            add(np.append(z[t, :, r], q[t, r]), np.append(np.ones(S), -1.0), 0.0, 0.0)
            # 0 <= a[t] - F[t,:,r] x  <=  (1 - q[t,r]) M[t,r]
            add(np.append(x, a[t]), np.append(-F[t, :, r], 1.0), 0.0, np.inf)
            add(np.concatenate([x, [a[t], q[t, r]]]), np.concatenate([-F[t, :, r], [1.0, M[t, r]]]),
                -np.inf, float(M[t, r]))
    if enforce_budget and np.isfinite(game.budget):
        add(z.ravel(), (p[:, None, None] * K).ravel(), -np.inf, game.budget + 1e-9)

    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r_i, n)).tocsr()
    c = np.zeros(n)
    c[z.ravel()] = -(p[:, None, None] * L).ravel()
    integrality = np.zeros(n)
    integrality[q.ravel()] = 1
    if pure:
        integrality[x] = 1
    lb = np.zeros(n)
    ub = np.ones(n)
    lb[a] = F.min(axis=(1, 2))
    ub[a] = F.max(axis=(1, 2))
    constraints = LinearConstraint(A, np.array(lo), np.array(hi))
    # HiGHS presolve costs more than it saves on a model this small (about 2x in bench/); if the solve
    # without it does not come back optimal, it is repeated with presolve before anything is concluded.
    res = milp(c, constraints=constraints, integrality=integrality, bounds=Bounds(lb, ub),
               options={"time_limit": time_limit, "disp": False, "presolve": False})
    if res.status != 0:
        res = milp(c, constraints=constraints, integrality=integrality, bounds=Bounds(lb, ub),
                   options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return MixedResult(np.zeros(S), np.full(T, -1), float("-inf"), float("inf"), False, res.message)
    reactions = res.x[q].argmax(axis=1)
    xv = None if pure else _polish(game, reactions, enforce_budget)
    if xv is None:  # numerically borderline: keep the MILP's own policy
        xv = np.clip(res.x[x], 0.0, None)
        xv = np.round(xv) if pure else xv
        xv = xv / xv.sum()
    types = np.arange(T)
    eu = float(sum(p[t] * xv @ L[t, :, reactions[t]] for t in types))
    er = float(sum(p[t] * xv @ K[t, :, reactions[t]] for t in types))
    return MixedResult(xv, reactions, eu, er, True, res.message)


def _polish(game: Game, reactions: np.ndarray, enforce_budget: bool) -> np.ndarray | None:
    """Re-solve the policy as an LP with the MILP's reactions fixed: a clean vertex, exact to LP precision."""
    F, L, K, p = game.follower, game.leader, game.risk, game.prior
    T, S, R = F.shape
    A, ub = [], []
    for t in range(T):
        for r in range(R):
            if r != reactions[t]:
                A.append(F[t, :, r] - F[t, :, reactions[t]])
                ub.append(0.0)
    if enforce_budget and np.isfinite(game.budget):
        A.append(sum(p[t] * K[t, :, reactions[t]] for t in range(T)))
        ub.append(game.budget + 1e-9)
    c = -sum(p[t] * L[t, :, reactions[t]] for t in range(T))
    res = linprog(c, A_ub=np.array(A) if A else None, b_ub=np.array(ub) if ub else None,
                  A_eq=np.ones((1, S)), b_eq=[1.0], bounds=[(0, 1)] * S, method="highs")
    if res.status != 0:
        return None
    xv = np.clip(res.x, 0.0, None)
    return xv / xv.sum()
