"""``pearl classify-response``: label each (prompt, response) row as full compliance / full refusal /
partial refusal, with an action code and a harmfulness probability."""

from __future__ import annotations

from pathlib import Path

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


def register(app: typer.Typer) -> None:
    @app.command("classify-response")
    def classify_response(
        input: Path = typer.Option(..., "--input", "-i", help="JSONL/JSON/CSV/Parquet file (or URL) of responses."),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: every input row plus the labels."),
        prompt_field: str = typer.Option("prompt", "--prompt-field", help="Column holding the user prompt."),
        response_field: str = typer.Option("completion", "--response-field", help="Column holding the reply."),
        judge: str = typer.Option("embedded", "--judge", help="embedded (no LLM, fast) | llm."),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="Rows embedded per batch."),
        model: str = ModelOpt, model_name: str = ModelNameOpt, base_url: str = BaseUrlOpt, api_key: str = ApiKeyOpt,
        judge_model: str = JudgeModelOpt, judge_model_name: str = JudgeModelNameOpt,
        judge_base_url: str = JudgeBaseUrlOpt, config: Path = ConfigOpt,
    ) -> None:
        """Add `refusal`, `action`, `action_name` and `harmful_probability` to every row.

        Rows with a missing prompt or response are still written, with `classify_error` saying why;
        empty or huge replies are classified like any other.
        """
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pearlpoint.io import AppendWriter, iter_rows

        if judge not in ("embedded", "llm"):
            raise PearlError(f"--judge must be 'embedded' or 'llm', not '{judge}'")
        if out.resolve() == Path(str(input)).resolve():
            raise PearlError("--out must differ from --input (the input is never overwritten)")
        rows, problems = [], 0
        for row in iter_rows(str(input)):
            if row.data is None:
                problems += 1
                rows.append(({"_line": row.line}, str(row.error)))
                continue
            missing = [f for f in (prompt_field, response_field) if f not in row.data]
            if missing and not rows and not any(isinstance(r[1], str) for r in rows):
                raise InputError(f"missing (rows need '{prompt_field}' and '{response_field}'; "
                                 f"this row has: {', '.join(list(row.data)[:12])})",
                                 path=str(input), line=row.line, field=missing[0])
            err = f"missing field '{missing[0]}'" if missing else None
            problems += bool(err)
            rows.append((row.data, err))
        if not rows:
            raise InputError("the file has no rows", path=str(input))
        console = Console(stderr=True)
        if judge == "embedded":
            from pearlpoint.eval.judge_embedded import EmbeddedResponseJudge

            clf = EmbeddedResponseJudge()
        else:
            from pearlpoint.eval.judge_llm import LLMResponseJudge
            from pearlpoint.llm import get_model

            settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url,
                                           api_key=api_key, judge_model=judge_model,
                                           judge_model_name=judge_model_name, judge_base_url=judge_base_url)
            clf = LLMResponseJudge(get_model(None, settings=settings, role="judge"))
        if out.exists():
            out.unlink()
        counts: dict[str, int] = {}
        with AppendWriter(out, fsync=False) as writer, Progress(
                TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console) as progress:
            task = progress.add_task("classify", total=len(rows))
            for start in range(0, len(rows), batch_size):
                chunk = rows[start:start + batch_size]
                good = [(d, e) for d, e in chunk if e is None]
                prompts = [d.get(prompt_field) for d, _ in good]
                responses = [d.get(response_field) for d, _ in good]
                if judge == "embedded":
                    labels = [v.as_fields() for v in clf.classify(prompts, responses, batch_size=batch_size)]
                else:
                    labels = clf.label_many(prompts, responses)
                it = iter(labels)
                for data, err in chunk:
                    row = dict(data)
                    if err is None:
                        row.update(next(it))
                        counts[row.get("refusal", "?")] = counts.get(row.get("refusal", "?"), 0) + 1
                    else:
                        row["classify_error"] = err
                    writer.write(row)
                progress.advance(task, len(chunk))
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        console.print(f"wrote {len(rows)} rows to {out} ({summary}" + (f"; {problems} rows not classified" if problems
                                                                         else "") + ")")
