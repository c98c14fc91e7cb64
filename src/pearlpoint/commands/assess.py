"""``pearl assess``: risk of one text (table or JSON), or of every row of a file (JSONL out)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from pearlpoint.commands.common import (
    ApiKeyOpt,
    BaseUrlOpt,
    ConfigOpt,
    ModelNameOpt,
    ModelOpt,
    settings_from_flags,
)

CHUNK = 64


def _print_table(a: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from pearlpoint.policy import get_policy

    console = Console()
    cat = get_policy().get(a.category)
    name = f"{a.category} ({cat.display_name(a.language)})" if cat else a.category
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold cyan")
    t.add_column()
    t.add_row("level", str(a.level.value))
    t.add_row("category", name)
    t.add_row("severity", str(a.severity))
    t.add_row("harmful probability", f"{a.harmful_probability:.3f}")
    t.add_row("intent", a.intent.value)
    t.add_row("interaction form", a.interaction_form.value)
    ut = a.user_types
    t.add_row("user types", f"benign {ut.benign:.2f} · vulnerable {ut.vulnerable:.2f} · malicious {ut.malicious:.2f}")
    t.add_row("attack form / distress", f"{a.adversarial_probability:.2f} / {a.distress_probability:.2f}")
    top = sorted(a.category_probs.items(), key=lambda kv: -kv[1])[:4]
    t.add_row("category probs", ", ".join(f"{k} {v:.2f}" for k, v in top))
    t.add_row("language · assessor", f"{a.language} · {a.assessor} (confidence {a.confidence:.2f})")
    for s in a.signals[:8]:
        t.add_row("signal", f"{s.name}" + (f": {s.detail}" if s.detail else ""))
    console.print(t)


def _assess_many(assessor: Any, texts: list[str]) -> list[Any]:
    """Per-item results: a RiskAssessment or the exception that item raised."""
    from pearlpoint.errors import PearlError

    if hasattr(assessor, "assess_batch"):
        try:
            return assessor.assess_batch(texts)
        except PearlError:
            pass  # fall back to one at a time so one bad text does not sink the chunk
    import asyncio

    async def one(t: str) -> Any:
        try:
            return await assessor.aassess(t)
        except PearlError as exc:
            return exc

    async def run() -> list[Any]:
        return await asyncio.gather(*(one(t) for t in texts))

    from pearlpoint.llm import run_sync

    return run_sync(run())


def _batch(assessor: Any, source: str, field: str, out: Path) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pearlpoint.io import AppendWriter, count_lines, iter_rows, lines_done, resolve

    err = Console(stderr=True)
    resolved = resolve(source)
    total = count_lines(resolved) if isinstance(resolved, Path) else None
    done, _ = lines_done(out)
    n_ok = n_bad = n_skip = 0
    pending: list[tuple[int, dict, str]] = []

    def flush(writer: AppendWriter) -> None:
        nonlocal n_ok, n_bad
        results = _assess_many(assessor, [t for _, _, t in pending])
        for (line, data, _), res in zip(pending, results, strict=True):
            if isinstance(res, Exception):
                n_bad += 1
                err.print(f"[yellow]{source}:{line}: field '{field}': {res} (skipped)[/]")
                continue
            writer.write({**data, "assessment": res.model_dump(mode="json"), "_line": line})
            n_ok += 1
        progress.advance(task, len(pending))
        pending.clear()

    with Progress(TextColumn("assessing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress, AppendWriter(out) as writer:
        task = progress.add_task("assess", total=total)
        for row in iter_rows(resolved, field=field):
            if row.line in done:
                n_skip += 1
                progress.advance(task)
                continue
            if not row.ok:
                n_bad += 1
                err.print(f"[yellow]{row.error} (skipped)[/]")
                progress.advance(task)
                continue
            pending.append((row.line, row.data, row.data[field]))
            if len(pending) >= CHUNK:
                flush(writer)
        if pending:
            flush(writer)
        progress.update(task, total=progress.tasks[0].completed)
    msg = f"{n_ok} assessed, {n_bad} bad rows skipped"
    if n_skip:
        msg += f", {n_skip} already in {out} (resumed)"
    err.print(f"{msg} -> {out}")


def register(app: typer.Typer) -> None:
    @app.command()
    def assess(
        text: str | None = typer.Argument(None, help="Text to assess (omit with --input)."),
        assessor: str = typer.Option(None, "--assessor", "-a", help="embedded (default) | llm | cascade."),
        as_json: bool = typer.Option(False, "--json", help="Print the RiskAssessment as JSON."),
        input_file: str | None = typer.Option(None, "--input", "-i", help="Batch: .jsonl/.json/.csv/.parquet file or URL."),
        field: str = typer.Option("prompt", "--field", "-f", help="Batch: the column holding the text."),
        out: Path | None = typer.Option(None, "--out", "-o", help="Batch: JSONL output (appended; reruns resume)."),
        policy: Path | None = typer.Option(None, "--policy", help="Your policy YAML, merged over the default."),
        weights: Path | None = typer.Option(None, "--weights", help="Folder with risk_heads.npz/.json (default: shipped)."),
        operating_point: str = typer.Option(None, "--operating-point", help="Embedded assessor: balanced (default) | strict "
                                            "(catches more harmful requests, flags more look-alikes)."),
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        api_key: str | None = ApiKeyOpt,
        config: Path | None = ConfigOpt,
    ) -> None:
        """Assess the risk of TEXT, or of every row of --input (writes --out)."""
        from pearlpoint.errors import PearlError
        from pearlpoint.risk import KINDS, get_assessor

        if assessor is not None and assessor not in KINDS:
            raise PearlError(f"--assessor must be one of {', '.join(KINDS)}, got '{assessor}'")
        if (text is None) == (input_file is None):
            raise PearlError("give either TEXT or --input FILE (not both)")
        if input_file is not None and out is None:
            raise PearlError("--input needs --out OUT.jsonl")
        settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url,
                                       api_key=api_key, policy_file=policy, assessor=assessor)
        if operating_point not in (None, "balanced", "strict"):
            raise PearlError(f"--operating-point must be balanced or strict, got '{operating_point}'")
        a = get_assessor(settings.assessor, settings, weights_dir=str(weights) if weights else None,
                         operating_point=operating_point)
        if input_file is not None:
            _batch(a, input_file, field, out)
            return
        result = a.assess(text)
        if as_json:
            sys.stdout.write(result.model_dump_json(indent=2) + "\n")
        else:
            _print_table(result)
