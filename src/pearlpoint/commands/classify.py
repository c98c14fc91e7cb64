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

MAX_REPORTED = 20  # bad rows named one by one; the rest are counted


def _done_lines(out: Path) -> set[int]:
    """Input lines already in --out (every row we write carries ``_line``), so a rerun skips them."""
    from pearlpoint.io import lines_done

    done, seen_rows = lines_done(out)
    if seen_rows and not done:
        raise PearlError(f"{out} already holds {seen_rows} rows without '_line' (not written by a resumable run); "
                         "it is left untouched: choose another --out or move it away")
    return done


def register(app: typer.Typer) -> None:
    @app.command("classify-response")
    def classify_response(
        input: Path = typer.Option(..., "--input", "-i", help="JSONL/JSON/CSV/Parquet file (or URL) of responses."),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSONL: every input row plus the labels (appended; a rerun resumes)."),
        prompt_field: str = typer.Option("prompt", "--prompt-field", help="Column holding the user prompt."),
        response_field: str = typer.Option("completion", "--response-field", help="Column holding the reply."),
        judge: str = typer.Option("embedded", "--judge", help="embedded (no LLM, fast) | llm."),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="Rows embedded per batch."),
        model: str = ModelOpt, model_name: str = ModelNameOpt, base_url: str = BaseUrlOpt, api_key: str = ApiKeyOpt,
        judge_model: str = JudgeModelOpt, judge_model_name: str = JudgeModelNameOpt,
        judge_base_url: str = JudgeBaseUrlOpt, config: Path = ConfigOpt,
    ) -> None:
        """Add `refusal`, `action`, `action_name` and `harmful_probability` to every row.

        The input is streamed and labelled in batches; every output row carries `_line` (its input
        line) and is appended at once, so a rerun (after a crash, Ctrl-C or a budget stop) skips the
        rows already in --out and never repeats a paid `--judge llm` call. Rows with a missing prompt
        or response, or that cannot be parsed, are still written, with `classify_error` saying why,
        and are named as file:line at the end; empty or huge replies are classified like any other.
        """
        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from pearlpoint.io import AppendWriter, count_lines, iter_rows

        if judge not in ("embedded", "llm"):
            raise PearlError(f"--judge must be 'embedded' or 'llm', not '{judge}'")
        source = str(input)
        if out.resolve() == Path(source).resolve():
            raise PearlError("--out must differ from --input (the input is never overwritten)")
        done = _done_lines(out)
        console = Console(stderr=True)
        clf = None

        def classifier():
            nonlocal clf
            if clf is None:  # loaded on first need: a finished rerun costs no model load
                if judge == "embedded":
                    from pearlpoint.classifiers.response import EmbeddedResponseJudge

                    clf = EmbeddedResponseJudge()
                else:
                    from pearlpoint.eval.judge_llm import LLMResponseJudge
                    from pearlpoint.llm import get_model

                    settings = settings_from_flags(config, model=model, model_name=model_name, base_url=base_url,
                                                   api_key=api_key, judge_model=judge_model,
                                                   judge_model_name=judge_model_name, judge_base_url=judge_base_url)
                    clf = LLMResponseJudge(get_model(None, settings=settings, role="judge"))
            return clf

        counts: dict[str, int] = {}
        bad: list[tuple[int, str]] = []
        n_rows = n_written = n_skipped = 0
        chunk: list[tuple[int, dict, str | None]] = []  # (line, data, why not classified)

        def flush(writer: AppendWriter) -> None:
            nonlocal n_written
            good = [data for _, data, err in chunk if err is None]
            labels: list[dict] = []
            if good:
                prompts = [d.get(prompt_field) for d in good]
                responses = [d.get(response_field) for d in good]
                if judge == "embedded":
                    labels = [v.as_fields() for v in classifier().classify(prompts, responses, batch_size=batch_size)]
                else:
                    labels = classifier().label_many(prompts, responses)
            it = iter(labels)
            for line, data, err in chunk:
                row = dict(data)
                if err is None:
                    row.update(next(it))
                    if "judge_error" in row:
                        bad.append((line, f"judge: {row['judge_error']}"))
                    else:
                        key = str(row.get("refusal", "?"))
                        counts[key] = counts.get(key, 0) + 1
                else:
                    row["classify_error"] = err
                    bad.append((line, err))
                row["_line"] = line
                writer.write(row)
                n_written += 1
            progress.advance(task, len(chunk))
            chunk.clear()

        with AppendWriter(out, fsync=False) as writer, Progress(
                TextColumn("classifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console) as progress:
            task = progress.add_task("classify", total=count_lines(source))
            for row in iter_rows(source):
                n_rows += 1
                if row.data is not None and n_rows == 1:
                    missing = [f for f in (prompt_field, response_field) if f not in row.data]
                    if missing:  # the first row has the wrong shape: almost surely wrong field names
                        raise InputError(f"missing (rows need '{prompt_field}' and '{response_field}'; "
                                         f"this row has: {', '.join(list(row.data)[:12])})",
                                         path=source, line=row.line, field=missing[0])
                if row.line in done:
                    n_skipped += 1
                    progress.advance(task)
                    continue
                if row.data is None:
                    err = getattr(row.error, "reason", None) or str(row.error)
                    if getattr(row.error, "field", None):
                        err += f" (field '{row.error.field}')"
                    chunk.append((row.line, {}, err))
                else:
                    missing = [f for f in (prompt_field, response_field) if f not in row.data]
                    chunk.append((row.line, row.data, f"missing field '{missing[0]}'" if missing else None))
                if len(chunk) >= batch_size:
                    flush(writer)
            if chunk:
                flush(writer)
            progress.update(task, total=progress.tasks[0].completed)
        if n_rows == 0:
            raise InputError("the file has no rows", path=source)
        for line, why in bad[:MAX_REPORTED]:
            console.print(f"[yellow]{escape(source)}:{line}: {escape(why)} (not classified)[/]")
        if len(bad) > MAX_REPORTED:
            console.print(f"[yellow]... and {len(bad) - MAX_REPORTED} more (see 'classify_error' / 'judge_error' "
                          f"in {escape(str(out))})[/]")
        parts = [f"wrote {n_written} rows to {escape(str(out))}"]
        if counts:
            parts.append(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        if bad:
            parts.append(f"{len(bad)} not classified")
        if n_skipped:
            parts.append(f"{n_skipped} already there (resumed)")
        console.print("; ".join(parts))
