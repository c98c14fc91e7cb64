"""`pearl respond` output: model text and warnings that look like rich markup are printed verbatim."""

from __future__ import annotations

from rich.console import Console

from pearlpoint.chain.schema import SafetyChain, Strategies
from pearlpoint.commands.respond import print_record
from pearlpoint.lingo.record import Iterate, Record

TRICKY = "[/INST] close tag, [red]x[/red] and [bold]b[/]"


def _record() -> Record:
    chain = SafetyChain(user_needs="needs [/INST] help", risk_intent="[red]none[/red]",
                        strategies=Strategies(safety=["avoid [/]"], usefulness=["explain [b]"]))
    it = Iterate(step=0, mode="seed", chain=chain, answer=f"Answer: {TRICKY}", satisfaction=1.0, safety=1.0,
                 error="judge said [/INST]")
    failed = Iterate(step=1, mode="developer", chain=chain, failed=True, error="parse error near [red]x[/red]")
    return Record(id="q1", query="hi", iterates=[it, failed], chosen_index=0,
                  solution={"pearl_point": "[/INST]", "chosen": {"label": "[red]L[/red]", "description": "d [/]"}},
                  warnings=[f"warn {TRICKY}"], error=f"err {TRICKY}")


def test_markup_like_text_is_printed_verbatim() -> None:
    console = Console(record=True, width=300, color_system=None)
    print_record(_record(), console, beta=2.0)  # must not raise rich.errors.MarkupError
    out = console.export_text()
    assert f"Answer: {TRICKY}" in out
    assert f"warning: warn {TRICKY}" in out
    assert f"error: err {TRICKY}" in out
    assert "parse error near [red]x[/red]" in out
    assert "[red]L[/red] ([/INST])" in out and "d [/]" in out
    assert "needs [/INST] help" in out and "[red]none[/red]" in out
