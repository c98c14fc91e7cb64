"""Fit the judge's linear heads with scikit-learn and keep only numpy arrays (training-time only)."""

from __future__ import annotations

import numpy as np

from pearlpoint.eval.judge_embedded import LinearHead


def fit_linear_head(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *, c: float = 0.05,
                    seed: int = 0, binary: bool = False) -> LinearHead:
    """Standardise, fit an L2 logistic regression (multinomial, or binary), return a LinearHead."""
    from sklearn.linear_model import LogisticRegression

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    clf.fit(Z, y, sample_weight=sample_weight)
    classes = [c.item() if hasattr(c, "item") else c for c in clf.classes_]
    if binary or len(classes) == 2:
        return LinearHead(mean, scale, clf.coef_[:1].copy(), clf.intercept_[:1].copy(), classes)
    return LinearHead(mean, scale, clf.coef_.copy(), clf.intercept_.copy(), classes)
