"""``pearl eval``: run a benchmark suite against a model (raw or CSA-wrapped) and write responses,
metrics and an HTML report; resumable."""

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
    settings_from_flags,
)
from pearlpoint.errors import PearlError


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_cmd(
        suite: str = typer.Argument(..., help="constructive | lookalikes | jailbreak-wrappers | strata-sword | xstest | "
                                              "strongreject | harmbench | jbb | do-not-answer | simplesafetytests | "
                                              "mmlu | gsm8k | generic"),
        data: str = typer.Option(None, "--data", "-d", help="Path or URL of the benchmark file (default: the "
                                                            "packaged suite, for constructive, lookalikes, "
                                                            "jailbreak-wrappers, mmlu and gsm8k)."),
        out: Path = typer.Option(..., "--out", "-o", help="Run folder (responses.jsonl, metrics.json, report.html)."),
        model: str = typer.Option(None, "--model", "-m", help="Backend: embedded (default) | openai | hf."),
        model_name: str = ModelNameOpt, base_url: str = BaseUrlOpt, api_key: str = ApiKeyOpt,
        csa: bool = typer.Option(False, "--csa", help="Wrap the model with CSA: assess -> Pearl Point -> refine."),
        csa_steps: int = typer.Option(1, "--csa-steps", min=0, help="Lingo-BP refinement steps per query with --csa."),
        judge: str = typer.Option("embedded", "--judge", help="Response judge: embedded | llm | both."),
        constructive_judge: bool = typer.Option(None, "--constructive-judge/--no-constructive-judge",
                                                help="Score satisfaction and safety with the Lingo judges "
                                                     "(default: on for the constructive suite only)."),
        limit: int = typer.Option(None, "--limit", "-n", min=1, help="Evaluate N items (spread over levels/labels)."),
        max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Reply length cap."),
        concurrency: int = typer.Option(None, "--concurrency", min=1, help="Items in flight at once."),
        judge_model: str = JudgeModelOpt, judge_model_name: str = JudgeModelNameOpt,
        judge_base_url: str = JudgeBaseUrlOpt, config: Path = ConfigOpt,
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    ) -> None:
        """Evaluate a model on a suite. Rerun the same command to resume after a crash."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pearlpoint.eval.loaders import suite_spec
        from pearlpoint.eval.runner import EvalConfig, EvalRunner
        from pearlpoint.llm import get_model, run_sync

        if judge not in ("embedded", "llm", "both"):
            raise PearlError(f"--judge must be embedded, llm or both, not '{judge}'")
        if suite.startswith("lm-eval:"):
            _lm_eval(suite, out=out, base_url=base_url, model_name=model_name, api_key=api_key, limit=limit)
            return
        spec = suite_spec(suite)
        settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url, api_key=api_key,
                                       judge_model=judge_model, judge_model_name=judge_model_name,
                                       judge_base_url=judge_base_url)
        generator = get_model(None, settings=settings)
        judge_llm = get_model(None, settings=settings, role="judge", accounting=generator.accounting)
        cfg = EvalConfig(suite=spec.name, data=data, limit=limit, csa=csa, judge=judge,
                         constructive_judge=constructive_judge, max_tokens=max_tokens, csa_steps=csa_steps,
                         model=settings.model, model_name=settings.model_name, seed=seed)
        runner = EvalRunner(cfg, generator=generator, judge_model=judge_llm, settings=settings,
                            concurrency=concurrency)
        console = Console(stderr=True)
        with Progress(TextColumn(f"{spec.name}{' +csa' if csa else ''}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            task = progress.add_task("eval", total=None)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            metrics = run_sync(runner.arun(out, progress=update))
        from pearlpoint.eval.report import _headline_rows

        for name, value in _headline_rows(metrics):
            console.print(f"  {name}: {value.split('<')[0]}" + (
                f" [{value.split('[')[1].split(']')[0]}]" if "[" in value else ""), highlight=False)
        if metrics.get("stopped"):
            console.print(f"[yellow]stopped early: {metrics['stopped']}[/]")
        console.print(f"wrote {out / 'responses.jsonl'}, {out / 'metrics.json'}, {out / 'report.html'}")


def _lm_eval(suite: str, *, out: Path, base_url: str | None, model_name: str | None, api_key: str | None,
             limit: int | None) -> None:
    """``pearl eval lm-eval:mmlu,gsm8k --base-url URL --model-name NAME``: lm-evaluation-harness tasks
    against any OpenAI-compatible endpoint (e.g. a CSA proxy started with ``pearl serve``)."""
    import json

    from pearlpoint.eval.capability import run_lm_eval

    tasks = [t for t in suite.split(":", 1)[1].split(",") if t]
    if not tasks:
        raise PearlError("name at least one task: lm-eval:TASK[,TASK...]")
    if not base_url or not model_name:
        raise PearlError("lm-eval needs --base-url and --model-name of an OpenAI-compatible endpoint")
    results = run_lm_eval(tasks, base_url=base_url, model_name=model_name, limit=limit, api_key=api_key)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"lm_eval": results, "run": {"suite": suite, "model_name": model_name,
                                                                             "base_url": base_url}}, indent=2),
                                      encoding="utf-8")
