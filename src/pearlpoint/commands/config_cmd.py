"""``pearl config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pearlpoint.commands.common import ConfigOpt, settings_from_flags


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Inspect the configuration.", no_args_is_help=True)

    @config_app.command("show")
    def show(config: Path | None = ConfigOpt,
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Print the effective settings (defaults < file < PEARL_* env < flags)."""
        from pearlpoint.config import find_config_file

        settings = settings_from_flags(config)
        data = settings.masked()
        if as_json:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        from rich.console import Console
        from rich.table import Table

        source = find_config_file(config)
        table = Table(title=f"effective configuration (file: {source or 'none'})")
        table.add_column("setting")
        table.add_column("value")
        for k, v in data.items():
            table.add_row(k, "" if v is None else str(v))
        Console().print(table)

    app.add_typer(config_app, name="config")
