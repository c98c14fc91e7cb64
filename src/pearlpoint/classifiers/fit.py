"""Fit the judge's linear heads with scikit-learn and keep only numpy arrays (training-time only)."""

from __future__ import annotations

import numpy as np

from pearlpoint.classifiers.response import LinearHead, MLPHead


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


EMB_DIM = 384  # MiniLM; pass ``dim`` for another encoder


def block_pca(X: np.ndarray, blocks: list[tuple[int, int]], k: int, n_features: int, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """A (d, len(blocks)*k + n_features) projection: PCA per embedding block, the trailing text
    features (and anything after the blocks) copied through unchanged."""
    from sklearn.decomposition import PCA

    d = X.shape[1]
    proj = np.zeros((d, len(blocks) * k + n_features), dtype=np.float64)
    bias = np.zeros(proj.shape[1])
    for j, (a, b) in enumerate(blocks):
        pca = PCA(k, random_state=seed).fit(X[:, a:b])
        proj[a:b, j * k:(j + 1) * k] = pca.components_.T
        bias[j * k:(j + 1) * k] = -pca.mean_ @ pca.components_.T
    for t in range(n_features):
        proj[d - n_features + t, len(blocks) * k + t] = 1.0
    return proj, bias


def fit_mlp_head(X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None, *, hidden: int = 64,
                 alpha: float = 1.0, seed: int = 0, k: int = 32, members: int = 5,
                 blocks: list[tuple[int, int]] | None = None, n_features: int | None = None,
                 dim: int = EMB_DIM) -> MLPHead:
    """Block PCA (k per block), standardise, then ``members`` seeded MLPs (early stopping each).
    ``dim``: the encoder's vector size (the judge's layout is head, rest, prompt vectors, then features)."""
    from sklearn.neural_network import MLPClassifier

    blocks = blocks if blocks is not None else [(0, dim), (dim, 2 * dim)]
    n_features = n_features if n_features is not None else X.shape[1] - 3 * dim
    proj, bias = block_pca(X, blocks, k, n_features, seed)
    R = X @ proj + bias
    mean = R.mean(axis=0)
    scale = R.std(axis=0)
    scale[scale < 1e-6] = 1.0
    Z = (R - mean) / scale
    w1, b1, w2, b2, classes = [], [], [], [], None
    for m in range(members):
        clf = MLPClassifier(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=400, early_stopping=True,
                            random_state=seed + m)
        try:
            clf.fit(Z, y, sample_weight=sample_weight)
        except TypeError:  # older scikit-learn: no sample weights for MLPs
            clf.fit(Z, y)
        classes = [c.item() if hasattr(c, "item") else c for c in clf.classes_]
        w1.append(clf.coefs_[0])
        b1.append(clf.intercepts_[0])
        w2.append(clf.coefs_[1])
        b2.append(clf.intercepts_[1])
    return MLPHead(proj.astype(np.float32), bias.astype(np.float32), mean.astype(np.float32),
                   scale.astype(np.float32), np.stack(w1), np.stack(b1), np.stack(w2), np.stack(b2), classes or [])
