"""``pearl demo``: the main job end to end on sample prompts (assess -> solve -> Lingo-BP -> export -> eval)."""

from __future__ import annotations

from pathlib import Path

import typer

from pearlpoint.commands.common import ApiKeyOpt, BaseUrlOpt, ConfigOpt, ModelNameOpt, ModelOpt


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        api_key: str | None = ApiKeyOpt,
        out: Path = typer.Option(Path("demo"), "--out", "-o", help="Output folder (report.html, orpo.jsonl, ...)."),
        steps: int = typer.Option(1, "--steps", min=0, max=10, help="Lingo-BP steps per prompt."),
        max_tokens: int = typer.Option(128, "--max-tokens", min=16, help="Longest answer, in tokens."),
        eval_limit: int = typer.Option(2, "--eval-limit", min=0, help="Constructive-suite items per arm (0 = skip)."),
        limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N sample prompts."),
        early_stop: bool = typer.Option(False, "--early-stop", help="Stop refining at a perfect first answer "
                                        "(faster; fewer preference pairs)."),
        prompts: Path | None = typer.Option(None, "--prompts", help="Your own prompts (JSONL/CSV: text, persona, lang)."),
        config: Path | None = ConfigOpt,
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
    ) -> None:
        """Run CSA end to end on sample prompts (distressed, curious, professional, attacker; en + zh) and
        compare raw vs CSA answers. Offline on the embedded model; --model openai --base-url for yours."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from pearlpoint.demo import Demo, DemoConfig

        console = Console()
        cfg = DemoConfig(out=out, model=model, model_name=model_name, base_url=base_url, api_key=api_key, steps=steps,
                         max_tokens=max_tokens, eval_limit=eval_limit, limit=limit, prompts_file=prompts,
                         early_stop=early_stop,
                         config_file=config)
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False, disable=as_json) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(stage, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            summary = Demo(cfg, progress=progress).run()
        if as_json:
            typer.echo(summary.model_dump_json(indent=2))
            return
        table = Table(title=f"pearl demo: raw vs CSA ({summary.generator})")
        for col in ("prompt", "level", "category", "Pearl Point", "guard", "raw", "CSA", "Δ"):
            table.add_column(col, overflow="fold", justify="right" if col in ("raw", "CSA", "Δ") else "left",
                             no_wrap=col in ("level", "raw", "CSA", "Δ"))

        def f(x: float | None) -> str:
            return "–" if x is None else f"{x:.2f}"

        for r in summary.results:
            delta = (r.csa.constructive - r.raw.constructive
                     if r.csa.constructive is not None and r.raw.constructive is not None else None)
            style = "" if delta is None else ("green" if delta > 0 else "red" if delta < 0 else "")
            table.add_row(r.id, r.level or "?", r.category or "?", r.strategy or "?",
                          (r.guard or {}).get("action", "off"), f(r.raw.constructive), f(r.csa.constructive),
                          f"[{style}]{'–' if delta is None else f'{delta:+.2f}'}[/]" if style else
                          ('–' if delta is None else f"{delta:+.2f}"))
        m = summary.means()
        table.add_row("mean", "", "", "", "", f(m["raw_constructive"]), f(m["csa_constructive"]), "")
        console.print(table)
        judges = sorted({r.csa.judge for r in summary.results if r.csa.judge})
        console.print("constructive score = satisfaction - 2 x risk, normalised to [-1, 1]; same judge for both "
                      f"answers ({', '.join(judges) or 'none'})")
        for arm, fig in summary.figures.items():
            def pc(k: str, fig: dict = fig) -> str:
                return "–" if fig.get(k) is None else f"{fig[k]:.0f}%"
            console.print(f"{arm:>3}: harmful answers to declined requests {pc('harmful_answers_rule_%')} "
                          f"(refusal-phrase rule, n={fig.get('n_harmful')}); refusals with an alternative "
                          f"{pc('refusals_with_alternative_%')}, with a resource {pc('refusals_with_resource_%')}; "
                          f"Chinese answered in Chinese {pc('zh_answered_in_zh_%')}")
        o = summary.orpo
        console.print(f"ORPO pairs: {o['pairs']} -> {o['path']}" if "pairs" in o else f"ORPO export skipped: {o.get('skipped')}")
        ev = summary.evaluation
        if "skipped" in ev:
            console.print(f"suite evaluation skipped: {ev['skipped']}")
        else:
            def head(arm: str) -> str:
                h = (ev.get(arm) or {}).get("constructive") or {}
                return "–" if h.get("score") is None else f"{h['score']:.1f}"
            console.print(f"constructive suite ({ev.get('limit')} items per arm, score x100 at beta=2): "
                          f"raw {head('raw')}, CSA {head('csa')}")
        for note in summary.notes:
            console.print(f"note: {note}")
        u = summary.usage
        console.print(f"report: {Path(summary.out) / 'report.html'}  ({summary.seconds:.0f} s, {u.get('calls', 0)} model "
                      f"calls, {u.get('cache_hits', 0)} cached, {u.get('completion_tokens', 0)} tokens generated)")
