"""The ``pearl`` command. Each sub-command lives in ``pearlpoint.commands.<name>`` and registers itself.

User mistakes raise PearlError and are printed as one line (exit status 2), never as a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from pearlpoint import __version__
from pearlpoint.errors import PearlError

# The order is the order of ``pearl --help``; a module that is missing (an unfinished area or an
# extra that is not installed) is skipped rather than breaking the whole CLI.
COMMAND_MODULES = [
    "chat", "models", "config_cmd", "assess", "solve", "respond", "generate", "export", "train", "convert",
    "eval", "classify", "compare", "serve", "audit", "demo",
]

app = typer.Typer(
    name="pearl",
    help="pearlpoint: Constructive Safety Alignment for language models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pearlpoint {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """pearlpoint: assess risk, find the Pearl Point, refine with Lingo-BP, train, evaluate, serve."""


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"pearlpoint.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pearlpoint.commands"):
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    try:
        app(standalone_mode=False)
    except PearlError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise
