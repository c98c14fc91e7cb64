"""Fine-tune a causal LM on exported CSA data with TRL: SFT, then ORPO or DPO.

The paper's recipe is SFT on the optimised (reasoning, answer) traces, then ORPO with the Pearl
Point iterate as chosen. Defaults here are the small, safe ones for that: a few epochs at a low
learning rate (higher with LoRA), bf16 only when a GPU supports it, checkpoints so ``--resume``
continues an interrupted run. With ``--lora`` the adapter is trained and, by default, merged into
the base weights so that the output directory is a plain model any loader (and the ``hf`` backend)
can use; the adapter itself is kept in ``OUT/adapter``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pearlpoint.errors import ConfigError, PearlError

METHODS = ("sft", "orpo", "dpo")
#: Model names that mean "the bundled SmolLM2, converted from its GGUF on first use".
BUNDLED_ALIASES = {"smollm2", "embedded", "bundled", "smollm2-135m"}


@dataclass
class TrainOptions:
    method: str
    data: Path
    model: str
    out: Path
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str = "all-linear"
    merge_lora: bool = True
    max_steps: int = -1
    epochs: float = 1.0
    learning_rate: float | None = None
    batch_size: int = 2
    grad_accum: int = 1
    max_length: int = 1024
    beta: float | None = None  # preference strength (DPO beta / ORPO lambda); None = TRL's default
    seed: int = 42
    save_steps: int = 50
    logging_steps: int = 1
    resume: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # more TRL config fields, from --config


@dataclass
class TrainResult:
    out_dir: Path
    method: str
    global_step: int
    train_loss: float | None
    seconds: float
    resumed_from: str | None
    rows: int
    log: list[dict[str, Any]]


def default_learning_rate(method: str, lora: bool) -> float:
    if method == "sft":
        return 2e-4 if lora else 2e-5
    return 5e-5 if lora else 5e-6


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """YAML or JSON mapping of option names (ours or TRL's) to values."""
    if not path:
        return {}
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such config file")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml  # noqa: PLC0415

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"{p}: cannot parse ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping of option names to values")
    return data


def resolve_model_path(model: str, work_dir: Path) -> str:
    """A directory, a hub name, a .gguf file (converted next to the output) or the bundled alias."""
    from pearlpoint.train.convert import DEFAULT_OUT, convert_gguf  # noqa: PLC0415

    if model.lower() in BUNDLED_ALIASES:
        return str(convert_gguf(DEFAULT_OUT).out_dir)
    p = Path(model).expanduser()
    if p.suffix == ".gguf":
        if not p.is_file():
            raise PearlError(f"{p}: no such GGUF file")
        return str(convert_gguf(work_dir / "base-from-gguf", gguf=p).out_dir)
    if p.exists():
        if not (p / "config.json").exists():
            raise PearlError(f"{p}: not a transformers model directory (no config.json); "
                             "for the bundled model run `pearl convert-gguf` or pass --model smollm2")
        return str(p)
    return model  # a hub name: needs the internet


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("torch", "transformers", "trl", "peft", "datasets"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            out[name] = "missing"
    return out


def _latest_checkpoint(out: Path) -> str | None:
    ckpts = [p for p in out.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    if not ckpts:
        return None
    return str(max(ckpts, key=lambda p: int(p.name.split("-")[-1])))


def _build_config(opts: TrainOptions, ckpt_dir: Path):
    import torch  # noqa: PLC0415

    common: dict[str, Any] = {
        "output_dir": str(ckpt_dir),
        "max_steps": opts.max_steps,
        "num_train_epochs": opts.epochs,
        "learning_rate": opts.learning_rate or default_learning_rate(opts.method, opts.lora),
        "per_device_train_batch_size": opts.batch_size,
        "gradient_accumulation_steps": opts.grad_accum,
        "max_length": opts.max_length,
        "seed": opts.seed,
        "save_strategy": "steps",
        "save_steps": opts.save_steps,
        "save_total_limit": 2,
        "logging_steps": opts.logging_steps,
        "report_to": [],
        "bf16": bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
        "dataloader_num_workers": 0,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 0,
    }
    if opts.beta is not None and opts.method in ("dpo", "orpo"):
        common["beta"] = opts.beta
    common.update(opts.extra)
    if opts.method == "sft":
        from trl import SFTConfig as Config  # noqa: PLC0415
    elif opts.method == "dpo":
        from trl import DPOConfig as Config  # noqa: PLC0415
    else:
        try:
            from trl.experimental.orpo import ORPOConfig as Config  # noqa: PLC0415
        except ImportError:  # older TRL kept ORPO at the top level
            from trl import ORPOConfig as Config  # type: ignore[no-redef]  # noqa: PLC0415
    import dataclasses  # noqa: PLC0415

    known = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(k for k in common if k not in known)
    if unknown:
        bad = [k for k in unknown if k in opts.extra]
        if bad:
            raise ConfigError(f"unknown {opts.method} training option(s): {', '.join(bad)}")
        for k in unknown:
            common.pop(k)
    return Config(**common)


def _trainer_class(method: str):
    if method == "sft":
        from trl import SFTTrainer  # noqa: PLC0415

        return SFTTrainer
    if method == "dpo":
        from trl import DPOTrainer  # noqa: PLC0415

        return DPOTrainer
    try:
        from trl.experimental.orpo import ORPOTrainer  # noqa: PLC0415
    except ImportError:
        from trl import ORPOTrainer  # type: ignore[no-redef]  # noqa: PLC0415
    return ORPOTrainer


def train(opts: TrainOptions, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Run one training job; the output directory ends up loadable by ``get_model("hf", ...)``."""
    if opts.method not in METHODS:
        raise PearlError(f"unknown training method {opts.method!r}; choose sft, orpo or dpo")
    try:
        import torch  # noqa: PLC0415
        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover
        raise ConfigError("training needs the train extra: pip install 'pearlpoint[train]'") from exc
    from pearlpoint.train.data import load_training_dataset  # noqa: PLC0415

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    out = Path(opts.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out / "checkpoints"
    dataset = load_training_dataset(opts.data, opts.method)
    model_path = resolve_model_path(opts.model, out)
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    except OSError as exc:
        raise PearlError(f"cannot load model {opts.model!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        raise PearlError(f"{opts.model}: the tokenizer has no chat template; conversational data needs one")

    peft_config = None
    if opts.lora:
        try:
            from peft import LoraConfig  # noqa: PLC0415
        except ImportError as exc:  # pragma: no cover
            raise ConfigError("--lora needs peft: pip install 'pearlpoint[train]'") from exc
        targets: str | list[str] = opts.lora_targets
        if targets != "all-linear":
            targets = [t.strip() for t in str(targets).split(",") if t.strip()]
        peft_config = LoraConfig(r=opts.lora_r, lora_alpha=opts.lora_alpha, lora_dropout=opts.lora_dropout,
                                 target_modules=targets, task_type="CAUSAL_LM")

    config = _build_config(opts, ckpt_dir)
    trainer = _trainer_class(opts.method)(model=model, args=config, train_dataset=dataset,
                                          processing_class=tokenizer, peft_config=peft_config,
                                          callbacks=callbacks)
    resume_from = _latest_checkpoint(ckpt_dir) if opts.resume else None
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume_from)
    seconds = time.perf_counter() - started

    trained = trainer.model
    if opts.lora:
        adapter_dir = out / "adapter"
        trained.save_pretrained(adapter_dir)
        if opts.merge_lora:
            trained = trained.merge_and_unload()
    if not opts.lora or opts.merge_lora:
        trained.save_pretrained(out)
    tokenizer.save_pretrained(out)
    log = [dict(e) for e in trainer.state.log_history]
    loss = getattr(result, "training_loss", None)
    info = {"options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(opts).items()},
            "base_model": model_path, "global_step": trainer.state.global_step, "train_loss": loss,
            "seconds": round(seconds, 2), "rows": len(dataset), "resumed_from": resume_from,
            "versions": _versions(), "log": log}
    (out / "pearlpoint-train.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    return TrainResult(out_dir=out, method=opts.method, global_step=trainer.state.global_step,
                       train_loss=loss, seconds=seconds, resumed_from=resume_from, rows=len(dataset),
                       log=log)
