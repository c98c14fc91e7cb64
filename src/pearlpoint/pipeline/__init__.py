"""Batch generation (async, resumable, optionally on Ray) and export to training formats.

    from pearlpoint.pipeline import GenerateConfig, generate, export_run
    report, run_json = generate(GenerateConfig(input="prompts.jsonl", out="runs/a", steps=2))
    stats = export_run("runs/a", "orpo", "data/orpo.jsonl", min_safety=1.0, beta=2.0)
"""

from __future__ import annotations

from typing import Any

from pearlpoint.pipeline.export import ExportStats, export_rows, export_run
from pearlpoint.pipeline.generate import GenerateConfig, generate_async
from pearlpoint.pipeline.runner import BatchReport, run_batch
from pearlpoint.pipeline.store import iter_latest_records, iter_run_records, scan_winners


def generate(cfg: GenerateConfig, **kwargs: Any) -> tuple[BatchReport, dict[str, Any]]:
    """Synchronous :func:`generate_async` (also from inside a running event loop)."""
    from pearlpoint.llm import run_sync  # noqa: PLC0415

    return run_sync(generate_async(cfg, **kwargs))


__all__ = ["BatchReport", "ExportStats", "GenerateConfig", "export_rows", "export_run", "generate",
           "generate_async", "iter_latest_records", "iter_run_records", "run_batch", "scan_winners"]
