"""Classification and calibration metrics for the assessors (used by training and the bench)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def binary_report(y: Sequence[int], p: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    y_arr, p_arr = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    pred = p_arr >= threshold
    tp = int(np.sum(pred & (y_arr == 1)))
    fp = int(np.sum(pred & (y_arr == 0)))
    fn = int(np.sum(~pred & (y_arr == 1)))
    tn = int(np.sum(~pred & (y_arr == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"n": int(len(y_arr)), "positives": int(y_arr.sum()), "precision": precision, "recall": recall, "f1": f1,
            "fpr": fp / (fp + tn) if fp + tn else 0.0, "accuracy": (tp + tn) / max(1, len(y_arr)),
            "ece": expected_calibration_error(y_arr, p_arr)}


def expected_calibration_error(y: Sequence[int], p: Sequence[float], bins: int = 10) -> float:
    """Equal-width ECE: the bin-size-weighted gap between confidence and observed frequency."""
    y_arr, p_arr = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y_arr) == 0:
        return 0.0
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p_arr, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            ece += m.mean() * abs(p_arr[m].mean() - y_arr[m].mean())
    return float(ece)


def rate(flags: Sequence[bool]) -> float:
    flags = list(flags)
    return float(sum(flags) / len(flags)) if flags else float("nan")
