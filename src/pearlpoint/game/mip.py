"""Mixed commitments: the exact Bayesian Stackelberg optimum as a DOBSS mixed-integer program.

The leader commits to a probability over strategies (a deployment policy users learn); each type
best-responds to the policy with one reaction. Variables (Paruchuri et al., 2008):
    x[s]       leader policy,                    sum_s x = 1
    z[t,s,r]   x[s] * q[t,r] (linearised),       sum_{s,r} z[t] = 1, sum_r z[t,s,:] = x[s]
    q[t,r]     binary: type t plays r,           sum_r q[t] = 1, sum_s z[t,:,r] = q[t,r]
    a[t]       type t's best value,              0 <= a[t] - sum_s F[t,s,r] x[s] <= (1 - q[t,r]) M
maximise sum_t p[t] sum_{s,r} L[t,s,r] z[t,s,r]  subject to  sum_t p[t] sum_{s,r} K[t,s,r] z[t,s,r] <= budget.
The MILP picks q among the follower's ties freely, which is exactly the strong (leader-favoured)
equilibrium. Solved with scipy's HiGHS (``scipy.optimize.milp``). ``pure=True`` makes x binary,
which must reproduce the pure-strategy enumeration (a check the tests run).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix

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
    ix = 0                      # x: S
    iz = S                      # z: T*S*R
    iq = iz + nz                # q: T*R
    ia = iq + T * R             # a: T
    n = ia + T

    def z(t: int, s: int, r: int) -> int:
        return iz + (t * S + s) * R + r

    def q(t: int, r: int) -> int:
        return iq + t * R + r

    M = float(F.max() - F.min()) + 1.0
    rows: list[tuple[dict[int, float], float, float]] = []
    rows.append(({ix + s: 1.0 for s in range(S)}, 1.0, 1.0))
    for t in range(T):
        rows.append(({z(t, s, r): 1.0 for s in range(S) for r in range(R)}, 1.0, 1.0))
        for s in range(S):
            coef = {z(t, s, r): 1.0 for r in range(R)}
            coef[ix + s] = -1.0
            rows.append((coef, 0.0, 0.0))
        rows.append(({q(t, r): 1.0 for r in range(R)}, 1.0, 1.0))
        for r in range(R):
            coef = {z(t, s, r): 1.0 for s in range(S)}
            coef[q(t, r)] = -1.0
            rows.append((coef, 0.0, 0.0))
            # a[t] - F x >= 0  and  a[t] - F x + M q <= M
            base = {ia + t: 1.0}
            for s in range(S):
                base[ix + s] = -float(F[t, s, r])
            rows.append((dict(base), 0.0, np.inf))
            upper = dict(base)
            upper[q(t, r)] = M
            rows.append((upper, -np.inf, M))
    if enforce_budget:
        coef = {z(t, s, r): float(p[t] * K[t, s, r]) for t in range(T) for s in range(S) for r in range(R)}
        rows.append((coef, -np.inf, game.budget + 1e-9))

    A = lil_matrix((len(rows), n))
    lo = np.empty(len(rows))
    hi = np.empty(len(rows))
    for i, (coef, lb, ub) in enumerate(rows):
        for j, v in coef.items():
            A[i, j] = v
        lo[i], hi[i] = lb, ub

    c = np.zeros(n)
    for t in range(T):
        c[iz + t * S * R: iz + (t + 1) * S * R] = -(p[t] * L[t]).ravel()
    integrality = np.zeros(n)
    integrality[iq: iq + T * R] = 1
    if pure:
        integrality[ix: ix + S] = 1
    lb = np.zeros(n)
    ub = np.ones(n)
    lb[ia:] = -np.inf
    ub[ia:] = np.inf
    res = milp(c, constraints=LinearConstraint(A.tocsr(), lo, hi), integrality=integrality,
               bounds=Bounds(lb, ub), options={"time_limit": time_limit, "disp": False})
    if res.x is None:
        return MixedResult(np.zeros(S), np.full(T, -1), float("-inf"), float("inf"), False, res.message)
    x = np.clip(res.x[ix: ix + S], 0.0, None)
    x = x / x.sum()
    qv = res.x[iq: iq + T * R].reshape(T, R)
    reactions = qv.argmax(axis=1)
    types = np.arange(T)
    eu = float(sum(p[t] * x @ L[t, :, reactions[t]] for t in types))
    er = float(sum(p[t] * x @ K[t, :, reactions[t]] for t in types))
    return MixedResult(x, reactions, eu, er, True, res.message)
