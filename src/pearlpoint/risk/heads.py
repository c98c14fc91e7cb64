"""Small linear heads stored as plain numpy arrays (``risk_heads.npz``) plus a JSON card.

No pickled scikit-learn objects: the package loads the weights with numpy alone, so a scikit-learn
upgrade can never break or execute code at load time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from pearlpoint.errors import ConfigError

WEIGHTS_FILE = "risk_heads.npz"
CARD_FILE = "risk_heads.json"


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass
class LinearHead:
    """``x -> (x - mean) / scale @ W.T + b`` over selected input columns."""

    columns: np.ndarray  # int indices into the full input vector
    mean: np.ndarray
    scale: np.ndarray
    W: np.ndarray  # (k, d) ; k == 1 for a binary head
    b: np.ndarray  # (k,)

    def logits(self, X: np.ndarray) -> np.ndarray:
        Z = (X[:, self.columns] - self.mean) / self.scale
        return Z @ self.W.T + self.b

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.columns": self.columns.astype(np.int32), f"{prefix}.mean": self.mean.astype(np.float32),
                f"{prefix}.scale": self.scale.astype(np.float32), f"{prefix}.W": self.W.astype(np.float32),
                f"{prefix}.b": self.b.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> LinearHead:
        return cls(*(np.asarray(arrays[f"{prefix}.{k}"]) for k in ("columns", "mean", "scale", "W", "b")))


@dataclass
class MLPHead:
    """A bag of one-hidden-layer ReLU networks; the logit is the mean of the members' logits."""

    columns: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    W1: np.ndarray  # (members, d, hidden)
    b1: np.ndarray  # (members, hidden)
    W2: np.ndarray  # (members, hidden)
    b2: np.ndarray  # (members,)

    def logits(self, X: np.ndarray) -> np.ndarray:
        Z = ((X[:, self.columns] - self.mean) / self.scale).astype(np.float32)
        out = np.zeros(len(Z), dtype=np.float32)
        for k in range(self.W1.shape[0]):
            hidden = np.maximum(Z @ self.W1[k] + self.b1[k], 0.0)
            out += hidden @ self.W2[k] + self.b2[k]
        return (out / self.W1.shape[0])[:, None]

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.columns": self.columns.astype(np.int32), f"{prefix}.mean": self.mean.astype(np.float32),
                f"{prefix}.scale": self.scale.astype(np.float32), f"{prefix}.W1": self.W1.astype(np.float16),
                f"{prefix}.b1": self.b1.astype(np.float32), f"{prefix}.W2": self.W2.astype(np.float32),
                f"{prefix}.b2": self.b2.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str) -> MLPHead:
        """Stored as float16 (half the file), computed in float32 (converted once, at load)."""
        return cls(*(np.asarray(arrays[f"{prefix}.{k}"], dtype=np.int64 if k == "columns" else np.float32)
                     for k in ("columns", "mean", "scale", "W1", "b1", "W2", "b2")))


def _head_from(arrays: Any, prefix: str) -> LinearHead | MLPHead:
    if f"{prefix}.W1" in arrays:
        return MLPHead.from_arrays(arrays, prefix)
    return LinearHead.from_arrays(arrays, prefix)


@dataclass
class RiskHeads:
    harm: LinearHead | MLPHead
    adversarial: LinearHead
    distress: LinearHead
    category: LinearHead
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def category_ids(self) -> list[str]:
        return list(self.card["category_ids"])

    @property
    def calibration(self) -> tuple[float, float]:
        a, b = self.card.get("calibration", {}).get("platt", [1.0, 0.0])
        return float(a), float(b)

    def calibration_for(self, lang: str) -> tuple[float, float]:
        by_lang = self.card.get("calibration", {}).get("platt_by_language", {})
        a, b = by_lang.get(lang, self.calibration)
        return float(a), float(b)

    @property
    def threshold(self) -> float:
        return float(self.card.get("threshold", 0.5))

    def threshold_for(self, lang: str, point: str = "balanced") -> float:
        """The decision threshold for a language and operating point, both picked on calibration rows
        only: ``balanced`` (the default) or ``strict`` (catches more, flags more look-alikes)."""
        if point != "balanced":
            points = self.card.get("operating_points", {})
            if point not in points:
                raise ValueError(f"operating point {point!r} is not in these weights (have: balanced"
                                 + "".join(f", {k}" for k in points if k != "balanced") + ")")
            return float(points[point])
        return float(self.card.get("thresholds", {}).get(lang, self.threshold))

    def save(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for name in ("harm", "adversarial", "distress", "category"):
            arrays.update(getattr(self, name).to_arrays(name))
        np.savez_compressed(out_dir / WEIGHTS_FILE, **arrays)
        (out_dir / CARD_FILE).write_text(json.dumps(self.card, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                         encoding="utf-8")

    @classmethod
    def load(cls, weights_dir: str | Path | None = None, sub: str = "") -> RiskHeads:
        """Heads from ``weights_dir`` (None: the packaged ones), or from its sub-folder ``sub``."""
        if weights_dir is not None and sub:
            weights_dir, sub = Path(weights_dir) / sub, ""
        try:
            if weights_dir is None:
                root = resources.files("pearlpoint.risk").joinpath("weights")
                root = root.joinpath(sub) if sub else root
                with resources.as_file(root.joinpath(WEIGHTS_FILE)) as wf:
                    arrays = dict(np.load(wf, allow_pickle=False))
                card = json.loads(root.joinpath(CARD_FILE).read_text("utf-8"))
            else:
                d = Path(weights_dir)
                arrays = dict(np.load(d / WEIGHTS_FILE, allow_pickle=False))
                card = json.loads((d / CARD_FILE).read_text("utf-8"))
        except FileNotFoundError as exc:
            where = weights_dir or ("the package" + (f" (weights/{sub})" if sub else ""))
            raise ConfigError(f"risk head weights not found in {where}: run "
                              "`python -m pearlpoint.risk.train --data-dir ../shared/data --out src/pearlpoint/risk/weights/`") from exc
        except Exception as exc:  # noqa: BLE001 - a truncated npz, a card that is not JSON
            where = Path(weights_dir) if weights_dir else Path(str(resources.files("pearlpoint.risk").joinpath("weights"))) / sub
            raise ConfigError(f"{where / WEIGHTS_FILE} (+ {CARD_FILE}): the risk head weights cannot be read "
                              f"({type(exc).__name__}: {exc}); reinstall pearlpoint or retrain them") from None
        try:
            return cls(*(_head_from(arrays, n) for n in ("harm", "adversarial", "distress", "category")), card=card)
        except (KeyError, ValueError, TypeError) as exc:
            where = Path(weights_dir) if weights_dir else "the packaged weights"
            raise ConfigError(f"{where}: the risk head weights do not match their card "
                              f"({type(exc).__name__}: {exc}); retrain them") from None

    @property
    def ngram_buckets(self) -> int:
        return int(self.card.get("ngram_buckets", 0))
