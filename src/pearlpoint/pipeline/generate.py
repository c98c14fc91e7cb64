"""``pearl generate``: run the CSA pipeline over a data set, resumably, and describe the run.

This module wires the pieces: settings -> models (one shared accounting, so ``--budget-calls``
caps the whole run) -> a responder around :func:`pearlpoint.lingo.respond_async` -> the async
batch loop (or the Ray runner) -> ``run.json``. ``run.json`` is rewritten atomically at the end of
every invocation and keeps the history of invocations, so a resumed run still says what was done.
"""

from __future__ import annotations

import platform
import sys
import time
from dataclasses import asdict, dataclass
from dataclasses import field as dc_field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pearlpoint.errors import BudgetExceeded, InputError, PearlError
from pearlpoint.io import write_json_atomic
from pearlpoint.pipeline.inputs import PromptReader, PromptRow
from pearlpoint.pipeline.runner import BatchReport, ProgressSink, Responder, run_batch
from pearlpoint.pipeline.store import (
    BAD_ROWS_FILE,
    RUN_FILE,
    read_run_json,
    scan_winners,
)


@dataclass
class GenerateConfig:
    """Everything that defines a batch; saved in run.json (secrets never are)."""

    input: str
    out: Path
    field: str = "prompt"
    id_field: str | None = None
    split: str = "train"
    limit: int | None = None
    concurrency: int = 8
    steps: int = 2
    schedule: str | None = None
    beta: float = 2.0
    max_tokens: int | None = None
    early_stop: bool = True
    retry_failed: bool = False
    budget_calls: int | None = None
    budget_tokens: int | None = None
    ray: bool = False
    ray_address: str | None = None
    endpoints: list[str] = dc_field(default_factory=list)
    settings_overrides: dict[str, Any] = dc_field(default_factory=dict)
    config_file: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["settings_overrides"] = {k: v for k, v in self.settings_overrides.items()
                                      if "key" not in k and v is not None}
        return data


def lingo_config(cfg: GenerateConfig) -> Any:
    from pearlpoint.lingo import LingoConfig, parse_schedule  # noqa: PLC0415

    kw: dict[str, Any] = {"steps": cfg.steps, "beta": cfg.beta, "early_stop": cfg.early_stop}
    if cfg.schedule:
        kw["schedule"] = parse_schedule(cfg.schedule)
    if cfg.max_tokens:
        kw["max_tokens"] = cfg.max_tokens
    return LingoConfig(**kw)


def build_settings(cfg: GenerateConfig) -> Any:
    from pearlpoint.config import get_settings  # noqa: PLC0415

    overrides = {k: v for k, v in cfg.settings_overrides.items() if v is not None}
    overrides.setdefault("concurrency", cfg.concurrency)
    if cfg.budget_calls is not None:
        overrides["budget_calls"] = cfg.budget_calls
    if cfg.budget_tokens is not None:
        overrides["budget_tokens"] = cfg.budget_tokens
    return get_settings(cfg.config_file, **overrides)


@dataclass
class Models:
    generator: Any
    judge: Any
    assessor: Any
    accounting: Any


def build_models(settings: Any, *, base_url: str | None = None) -> Models:
    """Generator and judge sharing one accounting (one run-wide budget), plus one assessor."""
    from pearlpoint.llm import get_model  # noqa: PLC0415
    from pearlpoint.llm.accounting import Accounting, Budget  # noqa: PLC0415

    accounting = Accounting(budget=Budget(max_calls=settings.budget_calls, max_tokens=settings.budget_tokens))
    over: dict[str, Any] = {"base_url": base_url} if base_url else {}
    generator = get_model(None, settings=settings, accounting=accounting, **over)
    judge = get_model(None, settings=settings, role="judge", accounting=accounting,
                      **(over if settings.judge_model in (None, settings.model) and not settings.judge_base_url
                         else {}))
    assessor = None
    try:
        from pearlpoint.risk import get_assessor  # noqa: PLC0415

        assessor = get_assessor(settings.assessor, settings=settings)
    except Exception:  # noqa: BLE001 - respond_async falls back to a cautious default and says so
        assessor = None
    return Models(generator, judge, assessor, accounting)


def lingo_responder(models: Models, config: Any, settings: Any) -> Responder:
    """The real responder: assess -> solve -> chain -> Lingo-BP for one row."""
    from pearlpoint.lingo import respond_async  # noqa: PLC0415
    from pearlpoint.llm import Message  # noqa: PLC0415

    async def respond(row: PromptRow) -> dict[str, Any]:
        query: Any = row.query
        if isinstance(query, list):
            query = [Message(role=m["role"], content=m["content"]) for m in query]
        record = await respond_async(query, generator=models.generator, judge=models.judge,
                                     assessor=models.assessor, config=config, record_id=row.id,
                                     settings=settings)
        if record.error and record.error.startswith("budget:"):
            # the run's budget ran out mid-row: not a failure of this row; a rerun redoes it
            raise BudgetExceeded(record.error.removeprefix("budget:").strip())
        return record.model_dump(mode="json")

    return respond


def count_rows(source: str) -> int | None:
    """A quick total for the progress bar: lines of a text file, rows of a Parquet file."""
    path = Path(source)
    if not path.is_file():
        return None
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq  # noqa: PLC0415

            return int(pq.ParquetFile(path).metadata.num_rows)
        if suffix in (".jsonl", ".ndjson", ".csv", ".tsv"):
            n = 0
            with open(path, "rb") as fh:
                for raw in fh:
                    if raw.strip():
                        n += 1
            return n - 1 if suffix in (".csv", ".tsv") else n
    except Exception:  # noqa: BLE001 - only a progress hint
        return None
    return None


def _versions() -> dict[str, str]:
    from pearlpoint import __version__  # noqa: PLC0415

    out = {"pearlpoint": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for name in ("openai", "llama_cpp", "ray", "transformers"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = str(getattr(mod, "__version__", "?"))
    return out


def write_bad_rows(run_dir: Path, report: BatchReport) -> None:
    import json  # noqa: PLC0415

    path = run_dir / BAD_ROWS_FILE
    with open(path, "w", encoding="utf-8") as fh:
        for bad in report.bad_examples:
            fh.write(json.dumps(bad, ensure_ascii=False) + "\n")


def write_run_json(run_dir: Path, cfg: GenerateConfig, report: BatchReport, *, models: dict[str, str],
                   accounting: dict[str, int] | None, started_at: str, status: str) -> dict[str, Any]:
    """Rewrite run.json: this invocation's config and counts, the totals on disk, the history."""
    previous = read_run_json(run_dir)
    winners = scan_winners(run_dir)
    failed_ids = [rid for rid, w in winners.items() if w.failed]
    invocation = {
        "started_at": started_at, "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "status": status, "stopped": report.stopped, "wall_s": round(report.wall_s, 3),
        "rows_per_s": round(report.rows_per_s, 3),
        "counts": {"rows_read": report.rows_read, "prompts": report.prompts,
                   "bad_rows": sum(report.bad_counts.values()), "bad_by_kind": report.bad_counts,
                   "skipped_done": report.skipped_done, "skipped_failed": report.skipped_failed,
                   "attempted": report.attempted, "succeeded": report.succeeded, "failed": report.failed,
                   "left_by_budget": report.not_started_budget},
        "usage": report.usage, "accounting": accounting or {},
    }
    history = list(previous.get("invocations", []))[-49:] + [invocation]
    totals = {"records": len(winners), "ok": len(winners) - len(failed_ids), "failed": len(failed_ids)}
    usage_total: dict[str, int] = {}
    for inv in history:
        for k, v in (inv.get("usage") or {}).items():
            usage_total[k] = usage_total.get(k, 0) + int(v)
    data = {
        "pearlpoint_run": 1, "status": status, "config": cfg.to_json(), "models": models,
        "versions": _versions(), "totals": totals, "counts": invocation["counts"],
        "bad_rows": report.bad_examples[:50], "usage": report.usage,
        "accounting": invocation["accounting"], "usage_all_invocations": usage_total,
        "wall_s": invocation["wall_s"], "wall_s_all_invocations": round(sum(i.get("wall_s", 0) for i in history), 3),
        "failed_examples": [{"id": rid, "error": winners[rid].error} for rid in failed_ids[:20]],
        "invocations": history,
    }
    write_json_atomic(run_dir / RUN_FILE, data)
    return data


async def generate_async(cfg: GenerateConfig, *, responder: Responder | None = None,
                         progress: ProgressSink | None = None,
                         models_info: dict[str, str] | None = None) -> tuple[BatchReport, dict[str, Any]]:
    """Run (or resume) a batch; returns the report and the run.json written."""
    check_config(cfg)
    check_source(cfg.input)
    run_dir = Path(cfg.out)
    if run_dir.exists() and not run_dir.is_dir():
        raise PearlError(f"{run_dir}: exists and is not a directory")
    run_dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    reader = PromptReader(cfg.input, field=cfg.field, id_field=cfg.id_field, split=cfg.split, limit=cfg.limit)
    total = cfg.limit if cfg.limit is not None else count_rows(cfg.input)
    if total is not None and cfg.limit is not None:
        counted = count_rows(cfg.input)
        total = min(total, counted) if counted is not None else total
    models_info = dict(models_info or {})
    accounting = None
    models = None
    if responder is None:
        settings = build_settings(cfg)
        models = build_models(settings)
        responder = lingo_responder(models, lingo_config(cfg), settings)
        models_info = {"generator": models.generator.name, "judge": models.judge.name,
                       "assessor": type(models.assessor).__name__ if models.assessor else "default"}
    started = time.perf_counter()
    report = BatchReport()
    status = "interrupted"
    try:
        report = await run_batch(reader, run_dir, responder, concurrency=cfg.concurrency,
                                 retry_failed=cfg.retry_failed, progress=progress, total=total)
        status = "budget_exhausted" if report.stopped else "complete"
    finally:
        if report.wall_s == 0.0:
            report.wall_s = time.perf_counter() - started
        if models is not None:
            accounting = models.accounting.snapshot()
            for m in {id(models.generator): models.generator, id(models.judge): models.judge}.values():
                try:
                    await m.aclose()
                except Exception:  # noqa: BLE001
                    pass
        write_bad_rows(run_dir, report)
        run_json = write_run_json(run_dir, cfg, report, models=models_info, accounting=accounting,
                                  started_at=started_at, status=status)
    return report, run_json


def check_source(source: str) -> None:
    """Fail before anything is created when the input plainly does not exist."""
    from pearlpoint.pipeline.inputs import is_hf_name  # noqa: PLC0415

    if source.startswith(("http://", "https://")) or is_hf_name(source):
        return
    if not Path(source).exists():
        raise InputError("no such input file or dataset directory", path=source)


def check_config(cfg: GenerateConfig) -> None:
    if cfg.concurrency < 1:
        raise PearlError("--concurrency must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise PearlError("--limit must be at least 1")
    if cfg.steps < 0:
        raise PearlError("--steps must be 0 or more")
