"""Small statistics the reports rest on: agreement (accuracy, Cohen's kappa) and bootstrap CIs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def accuracy(gold: Sequence[Any], pred: Sequence[Any]) -> float:
    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    if not gold:
        return float("nan")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Agreement beyond chance: (p_o - p_e) / (1 - p_e). 1.0 when both raters use one identical label."""
    if len(a) != len(b):
        raise ValueError("raters differ in length")
    n = len(a)
    if n == 0:
        return float("nan")
    labels = sorted({*a, *b}, key=str)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pe = sum((list(a).count(lab) / n) * (list(b).count(lab) / n) for lab in labels)
    if pe >= 1.0:
        return 1.0 if po >= 1.0 else 0.0
    return (po - pe) / (1.0 - pe)


def bootstrap_ci(values: Sequence[float] | np.ndarray, stat: Callable[[np.ndarray], float] = np.mean, *,
                 n_boot: int = 1000, alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over rows (seeded: the same data gives the same CI)."""
    arr = np.asarray(values, dtype=float)
    arr = arr[~np.isnan(arr)]
    if arr.size == 0:
        return (float("nan"), float("nan"))
    if arr.size == 1:
        v = float(stat(arr))
        return (v, v)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    stats = np.array([stat(arr[i]) for i in idx])
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return (float(lo), float(hi))


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], *, n_boot: int = 1000, alpha: float = 0.05,
                      seed: int = 0, paired: bool = False) -> tuple[float, float, float]:
    """(mean(b) - mean(a), lo, hi). Paired when both runs scored the same items in the same order."""
    x = np.asarray(a, dtype=float)
    y = np.asarray(b, dtype=float)
    if paired and x.size == y.size and x.size > 0:
        return (float(np.mean(y - x)), *bootstrap_ci(y - x, n_boot=n_boot, alpha=alpha, seed=seed))
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    xi = rng.integers(0, x.size, size=(n_boot, x.size))
    yi = rng.integers(0, y.size, size=(n_boot, y.size))
    diffs = y[yi].mean(axis=1) - x[xi].mean(axis=1)
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return (float(y.mean() - x.mean()), float(lo), float(hi))
