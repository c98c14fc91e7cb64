"""Benchmark the game solvers against the issue's targets, variants side by side in one run.

Targets: pure-strategy solve < 1 ms; DOBSS MILP for 6 strategies x 3 types x 6 reactions < 50 ms;
two-stage solve < 10 ms. Run:  python bench/bench_game.py [--repeat N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from pearlpoint.game import load_payoffs, posterior_regions, solve
from pearlpoint.game.mip import solve_mixed
from pearlpoint.game.solver import build_game, solve_pure
from pearlpoint.game.two_stage import two_stage_game
from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior


def timeit(fn: Callable[[], object], repeat: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    samples, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        samples.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.process_time() - c0) * 1000.0)
    samples.sort()
    # CPU time is reported next to wall time: on a shared 2-core machine wall time includes waiting
    return {"median_ms": statistics.median(samples), "p95_ms": samples[int(0.95 * (len(samples) - 1))],
            "max_ms": samples[-1], "cpu_median_ms": statistics.median(cpu), "n": len(samples)}


def multiple_lps(game) -> float:
    """Reference for the MILP: Conitzer & Sandholm's one LP per follower profile (R^T = 216 here)."""
    import itertools

    from scipy.optimize import linprog

    F, L, K, p, b = game.follower, game.leader, game.risk, game.prior, game.budget
    T, S, R = F.shape
    best = float("-inf")
    for prof in itertools.product(range(R), repeat=T):
        A = [F[t, :, r] - F[t, :, prof[t]] for t in range(T) for r in range(R) if r != prof[t]]
        A.append(sum(p[t] * K[t, :, prof[t]] for t in range(T)))
        ub = [0.0] * (len(A) - 1) + [b]
        c = -sum(p[t] * L[t, :, prof[t]] for t in range(T))
        res = linprog(c, A_ub=np.array(A), b_ub=ub, A_eq=np.ones((1, S)), b_eq=[1.0], bounds=[(0, 1)] * S,
                      method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=300)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    payoffs = load_payoffs()
    T, S, R = len(payoffs.type_ids), len(payoffs.strategy_ids), len(payoffs.reaction_ids)
    rng = np.random.default_rng(0)
    posteriors = rng.dirichlet([1, 1, 1], size=64)
    k = iter(range(10**9))

    def post() -> np.ndarray:
        return posteriors[next(k) % len(posteriors)]

    assessment = RiskAssessment(category="mental_health", user_types=UserTypePosterior(
        benign=0.45, vulnerable=0.3, malicious=0.25))
    solve(assessment)  # load policy + payoffs once (cached afterwards)

    rows: list[tuple[str, str, float | None, dict[str, float]]] = []

    def add(name: str, what: str, target: float | None, fn: Callable[[], object], repeat: int) -> None:
        rows.append((name, what, target, timeit(fn, repeat)))

    add("pure core", f"solve_pure on a built {S}x{T}x{R} game", 1.0,
        lambda: solve_pure(build_game(payoffs, post(), 4)), args.repeat)
    add("pure solve()", "public solve(): policy lookup, typed GameSolution, explanation", None,
        lambda: solve(assessment), args.repeat)
    add("two-stage core", "stage two (2 states) + stage one, arrays", 10.0,
        lambda: solve_pure(two_stage_game(build_game(payoffs, post(), 4))[0]), args.repeat)
    add("two-stage solve()", "public solve(two_stage=True)", 10.0,
        lambda: solve(assessment, two_stage=True), args.repeat)
    add("MIP (DOBSS, HiGHS)", f"mixed commitment, {S}x{T}x{R}, with budget", 50.0,
        lambda: solve_mixed(build_game(payoffs, post(), 4)), max(30, args.repeat // 5))
    add("MIP, pure-restricted", "same MILP with binary policy", None,
        lambda: solve_mixed(build_game(payoffs, post(), 4), pure=True), max(30, args.repeat // 5))
    add("multiple LPs (reference)", "216 LPs, one per reaction profile: what the MILP replaces", None,
        lambda: multiple_lps(build_game(payoffs, post(), 4)), 5)
    add("MIP solve()", "public solve(mixed=True)", 50.0,
        lambda: solve(assessment, mixed=True), max(30, args.repeat // 5))
    add("regions grid", "posterior_regions steps=40 (861 pure solves)", None,
        lambda: posterior_regions(payoffs, 4, 2.0, steps=40), 5)

    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(f"load average: {os.getloadavg()[0]:.2f} (other work on the machine inflates wall times)")
    print(f"{'variant':24s} {'median ms':>10s} {'p95 ms':>9s} {'cpu ms':>8s} {'target':>8s}  ok   what")
    out = []
    for name, what, target, st in rows:
        ok = "" if target is None else ("yes" if st["median_ms"] < target else "NO")
        tgt = "" if target is None else f"<{target:g}"
        print(f"{name:24s} {st['median_ms']:10.3f} {st['p95_ms']:9.3f} {st['cpu_median_ms']:8.3f} {tgt:>8s}  {ok:3s}  "
              f"{what}")
        out.append({"variant": name, "what": what, "target_ms": target, **st})
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
