"""``pearl respond``: answer one query with Lingo-BP and show how the answer was reached."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    settings_from_flags,
)
from pearlpoint.errors import InputError, PearlError


def _read_conversation(path: Path) -> list[dict[str, str]]:
    """A JSON file holding a list of {role, content} messages (or {"messages": [...]})."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", path=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
    if isinstance(data, dict):
        data = data.get("messages")
    if not isinstance(data, list) or not data:
        raise InputError("expected a non-empty list of {role, content} messages", path=path, field="messages")
    for i, m in enumerate(data):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant") or not isinstance(
                m.get("content"), str):
            raise InputError("each message needs role (system|user|assistant) and content (text)", path=path,
                             field=f"messages[{i}]")
    return data


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:+.2f}"


def print_record(record: Any, console: Any, beta: float) -> None:
    """Readable rendering: assessment, Pearl Point, every step's scores, the chosen chain and answer."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    a = record.assessment
    if a is not None:
        types = ", ".join(f"{k} {v:.0%}" for k, v in a.user_types.as_dict().items())
        console.print(Panel.fit(
            f"category [bold]{escape(str(a.category))}[/]  level [bold]{a.level.value}[/]  intent {a.intent.value}  "
            f"severity {a.severity}\nlikely asker: {escape(types)}  (assessor: {escape(str(a.assessor))}, confidence {a.confidence:.2f})",
            title="Risk assessment"))
    sol = record.solution or {}
    if sol:
        chosen = sol.get("chosen") or {}
        label = chosen.get("label") or sol.get("pearl_point")
        console.print(Panel.fit(f"[bold green]{escape(str(label))}[/] ({escape(str(sol.get('pearl_point')))})"
                                + (f"\n{escape(str(chosen.get('description')))}" if chosen.get("description") else ""),
                                title="Pearl Point"))
    table = Table(title=f"Lingo-BP steps (beta = {beta:g})")
    for col in ("step", "mode", "satisfaction", "safety", "constructive", "calls", "note"):
        table.add_column(col, justify="right" if col in ("step", "satisfaction", "safety", "constructive",
                                                         "calls") else "left")
    for i, it in enumerate(record.iterates):
        note = it.error or ""
        if it.backward and it.backward.get("applied"):
            note = "; ".join(f"{e['set']} {e['op']}: {e.get('new') or e.get('old')}" for e in it.backward["applied"])
        calls = int(it.usage.get("calls", 0)) + int(it.usage.get("cache_hits", 0))
        mark = " *" if i == record.chosen_index else ""
        style = "red" if it.failed else ("dim" if it.skipped else None)
        table.add_row(f"{it.step}{mark}", Text(str(it.mode)), _fmt(it.satisfaction), _fmt(it.safety),
                      _fmt(it.constructive(beta)), str(calls), Text(note[:80]), style=style)
    console.print(table)
    chosen = record.chosen
    if chosen is not None:
        console.print(Panel(Text(chosen.chain.as_text(record.lang) or "(empty chain)"), title="Chosen safety chain"))
    usage = record.usage
    console.print(f"[dim]calls {usage.get('calls', 0)} (+{usage.get('cache_hits', 0)} cached), tokens "
                  f"{usage.get('prompt_tokens', 0)} in / {usage.get('completion_tokens', 0)} out, "
                  f"{record.elapsed_s:.1f} s[/]")
    for w in record.warnings:
        console.print(Text.assemble(("warning:", "yellow"), " ", str(w)))
    if record.error:
        console.print(Text.assemble(("error:", "red"), " ", str(record.error)))
    console.print(Panel(Text(record.answer or "(no answer)"), title="Answer", border_style="green"))


def register(app: typer.Typer) -> None:
    @app.command()
    def respond(
        text: str | None = typer.Argument(None, help="The user's message (omit with --messages)."),
        messages: Path | None = typer.Option(None, "--messages", help="JSON file with a conversation "
                                             "(list of {role, content}); the last user turn is answered."),
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        api_key: str | None = ApiKeyOpt,
        judge_model: str | None = JudgeModelOpt,
        judge_model_name: str | None = JudgeModelNameOpt,
        judge_base_url: str | None = JudgeBaseUrlOpt,
        steps: int = typer.Option(2, "--steps", "-n", min=0, max=50, help="Backward rounds after the seed."),
        schedule: str = typer.Option("developer,user", "--schedule",
                                     help="Modes per round, cycled: e.g. 'developer,user' or 'both*3'."),
        beta: float = typer.Option(2.0, "--beta", min=0.0, help="Risk weight: satisfaction - beta * risk."),
        max_tokens: int = typer.Option(512, "--max-tokens", min=16, help="Forward pass length."),
        judge_mode: str = typer.Option("combined", "--judge-mode", help="combined (one call) | separate."),
        max_calls: int | None = typer.Option(None, "--max-calls", min=2, help="Per-query LLM call cap."),
        assessor: str | None = typer.Option(None, "--assessor", help="embedded | llm | cascade."),
        lang: str | None = typer.Option(None, "--lang", help="en | zh (default: detected)."),
        as_json: bool = typer.Option(False, "--json", help="Print the whole Record as JSON."),
        config: Path | None = ConfigOpt,
    ) -> None:
        """Answer TEXT with Lingo-BP: assess, find the Pearl Point, refine with the judges, print the trace."""
        from rich.console import Console

        from pearlpoint.lingo import LingoConfig, respond_async
        from pearlpoint.llm import get_model, run_sync

        if (text is None) == (messages is None):
            raise PearlError("give the message as TEXT or a conversation file with --messages (exactly one)")
        if judge_mode not in ("combined", "separate"):
            raise PearlError(f"--judge-mode: expected combined or separate, got {judge_mode!r}")
        if lang is not None and lang not in ("en", "zh"):
            raise PearlError(f"--lang: expected en or zh, got {lang!r}")
        query: Any = _read_conversation(messages) if messages is not None else text
        settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url,
                                       api_key=api_key, judge_model=judge_model, judge_model_name=judge_model_name,
                                       judge_base_url=judge_base_url, assessor=assessor)
        cfg = LingoConfig(steps=steps, schedule=schedule, beta=beta, max_tokens=max_tokens,
                          judge_mode=judge_mode, max_calls=max_calls, policy_file=settings.policy_file,
                          payoffs_file=settings.payoffs_file)
        generator = get_model(None, settings=settings)
        judge = get_model(None, settings=settings, role="judge", accounting=generator.accounting)
        console = Console(stderr=as_json)

        async def run() -> Any:
            try:
                return await respond_async(query, generator=generator, judge=judge, config=cfg, lang=lang,
                                           settings=settings)
            finally:
                await generator.aclose()
                await judge.aclose()

        with console.status("Assessing, solving and refining with Lingo-BP ...", spinner="dots"):
            record = run_sync(run())
        if as_json:
            typer.echo(record.model_dump_json(indent=2))
        else:
            print_record(record, console, beta)
        if record.chosen is None:
            raise typer.Exit(1)
