"""Fit the judge's linear heads with scikit-learn and keep only numpy arrays (training-time only)."""

from __future__ import annotations

import numpy as np

from pearlpoint.eval.judge_embedded import LinearHead, MLPHead


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


def fit_mlp_head(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *, hidden: int = 64,
                 alpha: float = 3.0, seed: int = 0) -> MLPHead:
    """Standardise, fit a one-hidden-layer ReLU MLP (early stopping on a seeded 10% slice)."""
    from sklearn.neural_network import MLPClassifier

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (X - mean) / scale
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=300, early_stopping=True,
                        random_state=seed)
    try:
        clf.fit(Z, y, sample_weight=sample_weight)
    except TypeError:  # older scikit-learn: no sample weights for MLPs
        clf.fit(Z, y)
    classes = [c.item() if hasattr(c, "item") else c for c in clf.classes_]
    w2, b2 = clf.coefs_[1], clf.intercepts_[1]
    return MLPHead(mean, scale, clf.coefs_[0].copy(), clf.intercepts_[0].copy(), w2.copy(), b2.copy(), classes)
