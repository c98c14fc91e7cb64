"""``pearl generate``: the CSA pipeline over a whole data set, resumable, optionally on Ray."""

from __future__ import annotations

from pathlib import Path

import typer

from pearlpoint.commands.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ConfigOpt,
    JudgeBaseUrlOpt,
    JudgeModelNameOpt,
    JudgeModelOpt,
    ModelNameOpt,
    ModelOpt,
)


def register(app: typer.Typer) -> None:
    @app.command()
    def generate(
        input: str = typer.Option(..., "--input", "-i", help="JSONL/JSON/CSV/TSV/Parquet file, URL, "
                                  "hf:NAME[:SPLIT] dataset or a local dataset directory."),
        field: str = typer.Option("prompt", "--field", "-f", help="Column holding the prompt (text or a chat)."),
        out: Path = typer.Option(..., "--out", "-o", help="Run directory (records.jsonl, run.json)."),
        id_field: str | None = typer.Option(None, "--id-field", help="Column with a stable row id "
                                            "(default: an 'id' column if present, else a hash of the prompt)."),
        split: str = typer.Option("train", "--split", help="Split of a Hugging Face dataset."),
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        api_key: str | None = ApiKeyOpt,
        judge_model: str | None = JudgeModelOpt,
        judge_model_name: str | None = JudgeModelNameOpt,
        judge_base_url: str | None = JudgeBaseUrlOpt,
        concurrency: int = typer.Option(8, "--concurrency", "-j", help="Rows (and model calls) in flight."),
        steps: int = typer.Option(2, "--steps", help="Lingo-BP refinement rounds after the seed answer."),
        schedule: str | None = typer.Option(None, "--schedule", help="Modes per round, e.g. 'developer,user'."),
        beta: float = typer.Option(2.0, "--beta", help="Risk weight when choosing the best iterate."),
        max_tokens: int | None = typer.Option(None, "--max-tokens", help="Longest forward answer, in tokens."),
        no_early_stop: bool = typer.Option(False, "--no-early-stop", help="Keep refining after a perfect "
                                           "score: more iterates per row, so more preference pairs to export."),
        limit: int | None = typer.Option(None, "--limit", "-n", help="Only the first N usable prompts."),
        budget_calls: int | None = typer.Option(None, "--budget-calls", help="Stop cleanly after N model calls."),
        budget_tokens: int | None = typer.Option(None, "--budget-tokens", help="Stop cleanly after N tokens."),
        retry_failed: bool = typer.Option(False, "--retry-failed", help="Run rows that failed before again."),
        use_ray: bool = typer.Option(False, "--ray", help="Distribute rows over a Ray cluster."),
        ray_address: str | None = typer.Option(None, "--ray-address", help="Ray cluster address "
                                               "(default: RAY_ADDRESS or a local Ray instance)."),
        endpoint: list[str] = typer.Option([], "--endpoint", help="With --ray: an OpenAI-compatible base URL; "
                                           "repeat for several (one worker group per endpoint)."),
        ray_workers: int = typer.Option(0, "--ray-workers", help="With --ray: worker actors (default: one "
                                        "per endpoint, or 2)."),
        config: Path | None = ConfigOpt,
    ) -> None:
        """Assess, solve, chain and refine every prompt of INPUT; one Record per row in OUT."""
        from rich.console import Console

        from pearlpoint.llm import run_sync
        from pearlpoint.pipeline.generate import GenerateConfig, generate_async
        from pearlpoint.pipeline.progress import RichProgress

        overrides = {"model": model, "model_name": model_name, "base_url": base_url, "api_key": api_key,
                     "judge_model": judge_model, "judge_model_name": judge_model_name,
                     "judge_base_url": judge_base_url}
        cfg = GenerateConfig(input=input, out=out, field=field, id_field=id_field, split=split, limit=limit,
                             concurrency=concurrency, steps=steps, schedule=schedule, beta=beta,
                             max_tokens=max_tokens, early_stop=not no_early_stop, retry_failed=retry_failed, budget_calls=budget_calls,
                             budget_tokens=budget_tokens, ray=use_ray, ray_address=ray_address,
                             endpoints=list(endpoint), settings_overrides=overrides,
                             config_file=str(config) if config else None)
        console = Console(stderr=True)
        with RichProgress(console) as progress:
            if use_ray:
                from pearlpoint.pipeline.ray_runner import generate_on_ray

                report, run_json = generate_on_ray(cfg, workers=ray_workers or None, progress=progress)
            else:
                report, run_json = run_sync(generate_async(cfg, progress=progress))
        print_summary(console, out, report, run_json)


def print_summary(console, out: Path, report, run_json) -> None:  # type: ignore[no-untyped-def]
    c = run_json["counts"]
    t = run_json["totals"]
    usage = run_json.get("usage", {})
    console.print(
        f"[bold]{out}[/]: this run answered {c['succeeded']} rows, {c['failed']} failed, "
        f"{c['skipped_done']} already done, {c['bad_rows']} bad input rows skipped"
        + (f" ({', '.join(f'{k} {v}' for k, v in c['bad_by_kind'].items())})" if c["bad_by_kind"] else "")
        + f"; {report.rows_per_s:.2f} rows/s over {report.wall_s:.1f} s; "
        f"{usage.get('calls', 0)} calls, {usage.get('prompt_tokens', 0) + usage.get('completion_tokens', 0)} tokens.",
        highlight=False)
    console.print(f"run total: {t['records']} records ({t['ok']} ok, {t['failed']} failed)"
                  + ("; rerun with --retry-failed to try the failed rows again" if t["failed"] else ""),
                  highlight=False)
    if report.stopped:
        console.print(f"[yellow]stopped early:[/] {report.stopped}. Rerun the same command to continue.",
                      highlight=False)
