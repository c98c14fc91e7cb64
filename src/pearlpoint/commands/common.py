"""Options and helpers shared by sub-commands, so every command spells model flags the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

ModelOpt = typer.Option(None, "--model", "-m", help="Backend: embedded (default) | openai | hf.")
ModelNameOpt = typer.Option(None, "--model-name", help="Served model name (openai), directory (hf) or .gguf (embedded).")
BaseUrlOpt = typer.Option(None, "--base-url", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.")
ApiKeyOpt = typer.Option(None, "--api-key", help="API key for --base-url (or PEARL_API_KEY).", show_default=False)
JudgeModelOpt = typer.Option(None, "--judge-model", help="Judge backend (defaults to the generator).")
JudgeModelNameOpt = typer.Option(None, "--judge-model-name", help="Judge model name / path.")
JudgeBaseUrlOpt = typer.Option(None, "--judge-base-url", help="Judge base URL.")
ConfigOpt = typer.Option(None, "--config", "-c", help="Config file (TOML or YAML).", exists=False)


def settings_from_flags(config: Path | None = None, **flags: Any) -> Any:
    """Effective settings: defaults < config file < PEARL_* env < these flags."""
    from pearlpoint.config import get_settings

    return get_settings(config, **flags)
