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
    "chat", "models", "doctor", "config_cmd", "assess", "solve", "respond", "generate", "export", "train", "convert",
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


def _click_exceptions() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Usage-error and abort classes of every click the CLI may run on (typer >= 0.16 vendors its own)."""
    usage: list[type[BaseException]] = []
    abort: list[type[BaseException]] = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        usage.append(mod.ClickException)
        for attr in ("Abort", "Exit"):
            if hasattr(mod, attr):
                abort.append(getattr(mod, attr))
    return tuple(usage), tuple(abort)


def main() -> None:
    from rich.markup import escape

    usage_errors, aborts = _click_exceptions()
    try:
        result = app(standalone_mode=False)
        if isinstance(result, int) and result:
            sys.exit(result)
    except PearlError as exc:
        # escape: the message may quote user text or model output holding [brackets]
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except SystemExit:
        raise
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            app(["--help"], standalone_mode=False)
            sys.exit(0)
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 2))
    except aborts as exc:
        code = getattr(exc, "exit_code", None)
        if code is None:  # Abort: the user pressed Ctrl-C at a prompt
            err_console.print("aborted")
            sys.exit(1)
        sys.exit(code)
