"""``pearl models``: which backends are usable here and which one is the default."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import typer

from pearlpoint.commands.common import ConfigOpt, settings_from_flags


def _status() -> list[tuple[str, bool, str]]:
    rows = []
    try:
        from pearlpoint.llm.buildcheck import check_llama_build, skip_requested
        from pearlpoint.llm.embedded import find_default_gguf

        gguf = find_default_gguf()
        if importlib.util.find_spec("llama_cpp") is None:
            rows.append(("embedded", False, f"{gguf.name} (llama-cpp-python missing)"))
        elif skip_requested():
            rows.append(("embedded", True, f"{gguf.name} (load check skipped: PEARL_SKIP_LLAMA_CHECK)"))
        else:
            # the same child-process check the backend runs, so a build that would crash shows here
            check = check_llama_build(gguf)
            rows.append(("embedded", check.ok, gguf.name if check.ok else check.reason))
    except Exception as exc:  # a missing extra is information here, not an error
        rows.append(("embedded", False, str(exc)))
    rows.append(("openai", importlib.util.find_spec("openai") is not None,
                 "any OpenAI-compatible endpoint: --base-url URL [--model-name NAME]"))
    hf_ok = importlib.util.find_spec("transformers") is not None and importlib.util.find_spec("torch") is not None
    rows.append(("hf", hf_ok, "a local transformers directory: --model-name PATH"
                 + ("" if hf_ok else " (needs pearlpoint[train])")))
    return rows


def register(app: typer.Typer) -> None:
    @app.command()
    def models(config: Path | None = ConfigOpt) -> None:
        """List the model backends, whether each is usable, and the configured default."""
        from rich.console import Console
        from rich.table import Table

        settings = settings_from_flags(config)
        table = Table(title="pearlpoint model backends")
        table.add_column("backend")
        table.add_column("available")
        table.add_column("default")
        table.add_column("details")
        for name, ok, detail in _status():
            table.add_row(name, "yes" if ok else "no", "*" if name == settings.model else "", detail)
        Console().print(table)
