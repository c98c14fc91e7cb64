"""The real Lingo-BP loop through the batch runner, against a real loopback upstream."""

from __future__ import annotations

import asyncio
import io
import json

from rich.console import Console

from pearlpoint.pipeline.generate import GenerateConfig, generate_async
from pearlpoint.pipeline.loadtest import scripted_csa_reply
from pearlpoint.pipeline.progress import RichProgress
from pearlpoint.pipeline.store import iter_run_records


def upstream_settings(srv) -> dict:
    return {"model": "openai", "base_url": srv.base_url, "model_name": "mock", "cache": False, "max_retries": 0}


def test_budget_stops_the_real_loop_and_rerun_finishes(mock_server, tmp_path):
    srv = mock_server(reply=scripted_csa_reply)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"qid": f"q{i}", "prompt": f"How do I repot plant {i}?"}) + "\n"
                           for i in range(5)) + json.dumps({"prompt": "no id"}) + "\n")
    cfg = GenerateConfig(input=str(src), out=tmp_path / "run", id_field="qid", concurrency=1, steps=1,
                         budget_calls=7, settings_overrides=upstream_settings(srv))
    report, run_json = asyncio.run(generate_async(cfg))
    assert run_json["status"] == "budget_exhausted" and "budget" in report.stopped
    assert 1 <= report.succeeded < 5 and report.failed == 0
    assert run_json["counts"]["bad_by_kind"] == {"missing_field": 1}  # the row without a qid
    assert run_json["accounting"]["calls"] <= 7
    first = report.succeeded

    buf = io.StringIO()
    with RichProgress(Console(file=buf, width=120)) as progress:
        cfg.budget_calls = None
        report, run_json = asyncio.run(generate_async(cfg, progress=progress))
    assert report.succeeded == 5 - first and report.skipped_done == first
    assert run_json["totals"] == {"records": 5, "ok": 5, "failed": 0}
    assert sorted(r["id"] for r in iter_run_records(tmp_path / "run")) == [f"q{i}" for i in range(5)]
    text = buf.getvalue()
    assert "rows/s" in text and "ok 5" in text and "skipped" in text
    rec = next(iter_run_records(tmp_path / "run"))
    assert rec["generator"].startswith("openai") and len(rec["iterates"]) >= 2
    assert run_json["models"]["generator"].startswith("openai")
