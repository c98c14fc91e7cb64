"""``pearl compare``: several eval runs side by side, with differences and their confidence intervals."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pearlpoint.errors import PearlError


def register(app: typer.Typer) -> None:
    @app.command("compare")
    def compare(
        dirs: list[Path] = typer.Argument(..., help="Run folders written by `pearl eval` (the first is the baseline)."),
        out: Path = typer.Option(..., "--out", "-o", help="HTML report to write (a .json with the numbers goes next to it)."),
        seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    ) -> None:
        """Compare runs: each metric per run with a 95% CI, and each run minus the first."""
        from rich.console import Console

        from pearlpoint.eval.report import COMPARE_METRICS, render_compare

        if len(dirs) < 2:
            raise PearlError("give at least two run folders to compare")
        html_text, cmp = render_compare(dirs, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html_text, encoding="utf-8")
        out.with_suffix(".json").write_text(json.dumps(cmp, indent=2, ensure_ascii=False), encoding="utf-8")
        console = Console(stderr=True)
        for key, entry in cmp["metrics"].items():
            vals = ", ".join("-" if s["value"] is None else f"{s['value']:.1f}" for s in entry["runs"])
            diffs = ", ".join(f"{d['diff']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]" for d in entry["diff_vs_first"])
            console.print(f"{COMPARE_METRICS[key]}: {vals}; vs first: {diffs}", highlight=False)
        console.print(f"wrote {out}")
