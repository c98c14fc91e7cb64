"""``pearl serve``: the OpenAI-compatible CSA proxy."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        config: Path | None = typer.Option(None, "--config", "-c", help="Serve config (YAML or TOML)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8088, "--port", "-p", help="Port to listen on."),
        upstream: str | None = typer.Option(None, "--upstream", help="Upstream backend: embedded | openai | hf."),
        base_url: str | None = typer.Option(None, "--base-url", help="Upstream OpenAI-compatible base URL."),
        model_name: str | None = typer.Option(None, "--model-name", help="Upstream model name."),
        refine: int | None = typer.Option(None, "--refine", help="Lingo-BP steps for R1/R2 requests (0 = off)."),
        audit_db: Path | None = typer.Option(None, "--audit-db", help="SQLite audit log path."),
        allow_anonymous: bool = typer.Option(False, "--allow-anonymous",
                                             help="Serve without client keys (only when none are configured)."),
        hash_key: str | None = typer.Option(None, "--hash-key", metavar="KEY",
                                            help="Print the config hash of KEY and exit."),
        new_key: bool = typer.Option(False, "--new-key", help="Make a random client key, print it and its hash, exit."),
        pbkdf2: bool = typer.Option(False, "--pbkdf2", help="With --hash-key/--new-key: use pbkdf2 instead of sha256."),
        example_config: bool = typer.Option(False, "--example-config", help="Print an annotated config file and exit."),
        log_level: str = typer.Option("info", "--log-level"),
    ) -> None:
        """Run the CSA proxy: every chat request is assessed, solved, steered and (optionally) refined."""
        from pearlpoint.serve.auth import generate_key
        from pearlpoint.serve.auth import hash_key as do_hash

        if example_config:
            from importlib.resources import files

            typer.echo(files("pearlpoint.serve").joinpath("example_config.yaml").read_text(encoding="utf-8"), nl=False)
            return
        scheme = "pbkdf2" if pbkdf2 else "sha256"
        if hash_key is not None or new_key:
            key = hash_key if hash_key is not None else generate_key()
            if new_key:
                typer.echo(f"key:  {key}")
            typer.echo(f"hash: {do_hash(key, scheme=scheme)}" if new_key else do_hash(key, scheme=scheme))
            return

        import logging

        from rich.console import Console

        from pearlpoint.errors import PearlError

        try:
            from pearlpoint.serve.app import Proxy
            from pearlpoint.serve.server import serve_forever
        except ImportError as exc:
            raise PearlError(f"pearl serve needs the 'serve' extra ({exc.name} is missing): "
                             "pip install 'pearlpoint[serve]'") from None
        from pearlpoint.serve.config import load_config

        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        overrides = {"upstream__model": upstream, "upstream__base_url": base_url, "upstream__model_name": model_name,
                     "refine__steps": refine, "audit__path": str(audit_db) if audit_db else None,
                     "auth__allow_anonymous": True if allow_anonymous else None}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        cfg = load_config(config, **overrides)
        if not cfg.auth.keys and not cfg.auth.allow_anonymous:
            raise PearlError("no client keys configured: add auth.keys to the config "
                             "(make one with `pearl serve --new-key`) or pass --allow-anonymous")
        if cfg.auth.keys == [] and host not in ("127.0.0.1", "localhost", "::1"):
            raise PearlError(f"refusing to serve without keys on {host}: configure auth.keys or listen on 127.0.0.1")
        console = Console(stderr=True)
        with console.status("loading the assessor and the upstream model..."):
            proxy = Proxy(cfg, install_sighup=True, overrides=overrides)
        console.print(f"[bold]pearl serve[/] on http://{host}:{port}/v1  upstream={cfg.upstream.model}"
                      f"{' ' + cfg.upstream.base_url if cfg.upstream.base_url else ''}  models={','.join(cfg.models)}"
                      f"  refine={cfg.refine.steps}  audit={cfg.audit.path if cfg.audit.enabled else 'off'}"
                      f"{'  (config: ' + cfg.source + ', SIGHUP reloads)' if cfg.source else ''}", highlight=False)
        serve_forever(proxy, host, port, log_level=log_level)
