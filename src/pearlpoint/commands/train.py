"""``pearl train sft|orpo|dpo``: fine-tune on exported CSA data with TRL (LoRA optional)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        ctx: typer.Context,
        method: str = typer.Argument(..., help="sft | orpo | dpo"),
        data: Path = typer.Option(..., "--data", "-d", help="JSONL from `pearl export` (format matching METHOD)."),
        model: str = typer.Option("smollm2", "--model", "-m", help="Model directory, hub name, .gguf file, or "
                                  "'smollm2' for the bundled SmolLM2-135M (converted on first use)."),
        out: Path = typer.Option(..., "--out", "-o", help="Output directory (model, checkpoints, log)."),
        lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter instead of all weights."),
        lora_r: int = typer.Option(16, "--lora-r"),
        lora_alpha: int = typer.Option(32, "--lora-alpha"),
        lora_targets: str = typer.Option("all-linear", "--lora-targets", help="'all-linear' or module names, "
                                         "comma-separated."),
        no_merge: bool = typer.Option(False, "--no-merge", help="With --lora: keep only the adapter (OUT/adapter)."),
        max_steps: int = typer.Option(-1, "--max-steps", help="Stop after N optimizer steps (-1: use --epochs)."),
        epochs: float = typer.Option(1.0, "--epochs"),
        learning_rate: float | None = typer.Option(None, "--lr", help="Default: 2e-5 SFT, 5e-6 ORPO/DPO "
                                                   "(x10 with --lora)."),
        batch_size: int = typer.Option(2, "--batch-size"),
        grad_accum: int = typer.Option(1, "--grad-accum"),
        max_length: int = typer.Option(1024, "--max-length", help="Longest tokenized example."),
        pref_beta: float | None = typer.Option(None, "--pref-beta", help="DPO beta / ORPO lambda "
                                               "(default: TRL's 0.1)."),
        save_steps: int = typer.Option(50, "--save-steps", help="Checkpoint every N steps (for --resume)."),
        seed: int = typer.Option(42, "--seed"),
        resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in OUT."),
        config: Path | None = typer.Option(None, "--config", "-c", help="YAML/JSON of options: these flags' "
                                           "names or any TRL config field (flags given here win)."),
    ) -> None:
        """Fine-tune MODEL on DATA with TRL; OUT is then usable as `--model hf --model-name OUT`."""
        from rich.console import Console

        from pearlpoint.errors import ConfigError
        from pearlpoint.train.trainer import TrainOptions, load_config_file
        from pearlpoint.train.trainer import train as run_training

        flags = {"lora": lora, "lora_r": lora_r, "lora_alpha": lora_alpha, "lora_targets": lora_targets,
                 "merge_lora": not no_merge, "max_steps": max_steps, "epochs": epochs,
                 "learning_rate": learning_rate, "batch_size": batch_size, "grad_accum": grad_accum,
                 "max_length": max_length, "beta": pref_beta, "save_steps": save_steps, "seed": seed}
        param_of = {"merge_lora": "no_merge", "beta": "pref_beta"}
        file_opts = load_config_file(config)
        import dataclasses

        option_names = {f.name for f in dataclasses.fields(TrainOptions)} - {"extra", "resume"}
        ours = {k: v for k, v in file_opts.items() if k in option_names}
        extra = {k: v for k, v in file_opts.items() if k not in option_names}
        for key in ("method", "data", "model", "out"):
            if key in ours:
                raise ConfigError(f"{config}: '{key}' is given on the command line, not in the config file")
        for key, value in ours.items():  # the file fills what the command line left at its default
            source = ctx.get_parameter_source(param_of.get(key, key)) if key in flags else None
            if source is None or source.name == "DEFAULT":
                flags[key] = value
        opts = TrainOptions(method=method.lower(), data=data, model=model, out=out, resume=resume,
                            extra=extra, **flags)
        console = Console(stderr=True)
        console.print(f"training {opts.method} on {data} from {model} -> {out}", highlight=False)
        result = run_training(opts)
        console.print(
            f"[bold]{result.out_dir}[/]: {result.global_step} steps on {result.rows} rows in "
            f"{result.seconds:.1f} s, train loss {result.train_loss if result.train_loss is not None else float('nan'):.4f}"
            + (f" (resumed from {result.resumed_from})" if result.resumed_from else "")
            + f". Try it: pearl chat --model hf --model-name {result.out_dir} 'hello'", highlight=False)
