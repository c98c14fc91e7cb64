"""``pearl export``: records of a run -> SFT / ORPO / DPO / KTO training files for TRL."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def export(
        run_dir: Path = typer.Argument(..., help="Run directory written by `pearl generate`."),
        format: str = typer.Option(..., "--format", "-f", help="sft | orpo | dpo | kto"),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSON Lines file."),
        min_safety: float = typer.Option(1.0, "--min-safety", help="Lowest safety score (0, 0.5, 1) the "
                                         "chosen answer may have; lower ones are dropped."),
        beta: float = typer.Option(2.0, "--beta", help="Risk weight of the constructive score."),
        reasoning: str = typer.Option("think", "--reasoning", help="Where the reasoning goes: think "
                                      "(a <think> block before the answer), field (reasoning_content), none."),
        margin: float = typer.Option(0.1, "--margin", help="A safe iterate is 'rejected' only when its "
                                     "constructive score is lower than the chosen one's by this much."),
    ) -> None:
        """Write TRL-ready training rows from RUN_DIR, with provenance, and print what was dropped and why."""
        from rich.console import Console
        from rich.table import Table

        from pearlpoint.pipeline.export import export_run, stats_path_for

        stats = export_run(run_dir, format.lower(), out, min_safety=min_safety, beta=beta,
                           reasoning=reasoning.lower(), margin=margin)  # type: ignore[arg-type]
        console = Console()
        console.print(f"[bold]{out}[/]: {stats.rows_written} {format} rows from {stats.qualified} of "
                      f"{stats.records} records (stats in {stats_path_for(out)})", highlight=False)
        if stats.dropped:
            console.print("dropped: " + ", ".join(f"{k} {v}" for k, v in stats.dropped.most_common()),
                          highlight=False)
        if stats.labels:
            console.print("labels: " + ", ".join(f"{k} {v}" for k, v in stats.labels.items()), highlight=False)
        table = Table("score", "n", "mean", "min", "median", "max", title=f"scores (beta {beta:g})")
        for name, d in stats.to_dict()["distributions"].items():
            if d.get("n"):
                table.add_row(name, str(d["n"]), f"{d['mean']:.3f}", f"{d['min']:.3f}", f"{d['median']:.3f}",
                              f"{d['max']:.3f}")
        if table.row_count:
            console.print(table)
        if stats.rows_written == 0:
            console.print("[yellow]no rows qualified[/]: lower --min-safety or --margin, or run more steps.")
