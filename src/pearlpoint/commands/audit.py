"""``pearl audit``: what the proxy decided, from its SQLite audit log."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def audit(
        db: Path = typer.Option(Path("pearl-audit.sqlite"), "--db", help="Audit database (audit.path in the serve config)."),
        level: str | None = typer.Option(None, "--level", help="R0, R1, R2 or a comma list."),
        strategy: str | None = typer.Option(None, "--strategy", help="Strategy id, e.g. constructive_guidance."),
        since: str | None = typer.Option(None, "--since", help="30m, 2h, 7d or an ISO time (UTC)."),
        client: str | None = typer.Option(None, "--client", help="Name of the client key."),
        limit: int = typer.Option(50, "--limit", "-n", min=1, help="Newest N decisions."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ) -> None:
        """List the proxy's decisions, newest first."""
        import json

        from rich.console import Console
        from rich.table import Table

        from pearlpoint.serve.audit import parse_since, query

        rows = query(db, level=level, strategy=strategy, since=parse_since(since) if since else None,
                     client=client, limit=limit)
        if as_json:
            for r in rows:
                typer.echo(json.dumps(r, ensure_ascii=False))
            return
        console = Console()
        if not rows:
            console.print("no decisions match")
            return
        table = Table(title=f"{len(rows)} decision(s) from {db}")
        for col in ("time (UTC)", "client", "level", "category", "strategy", "P(mal)", "status", "ms", "prompt"):
            table.add_column(col, overflow="fold", no_wrap=col in ("time (UTC)", "level", "status", "ms"))
        for r in rows:
            post = r.get("posterior") or {}
            flags = (" leak-cut" if r["leak_blocked"] else "") + (" esc" if (r.get("scores") or {}).get("escalation") else "")
            table.add_row(r["time"][5:19].replace("T", " "), r.get("client") or "", (r.get("level") or "") + flags,
                          r.get("category") or "", r.get("strategy") or "", f"{post.get('malicious', 0):.2f}",
                          str(r.get("status")), f"{r.get('latency_ms') or 0:.0f}",
                          r["prompt_hash"][7:15] if not r.get("conversation") else _last_user(r["conversation"]))
        console.print(table)


def _last_user(conversation: str) -> str:
    import json

    try:
        msgs = json.loads(conversation)
        text = next(m["content"] for m in reversed(msgs) if m["role"] == "user")
    except (ValueError, StopIteration, KeyError, TypeError):
        return ""
    return text if len(text) <= 60 else text[:57] + "..."
