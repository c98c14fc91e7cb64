"""End to end with the real embedded model: pearl generate -> records -> pearl export."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_generate_and_export_with_embedded_model(tmp_path):
    from pearlpoint.cli import app

    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "sleep", "prompt": "How can I help my toddler fall asleep?"}) + "\n"
                   + json.dumps({"id": "nothing", "text": "no prompt here"}) + "\n")
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["generate", "-i", str(src), "-o", str(run), "--steps", "0",
                                      "--max-tokens", "64", "-j", "1"])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in (run / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == ["sleep"]
    rec = records[0]
    assert rec["error"] is None and rec["generator"].startswith("embedded")
    seed = rec["iterates"][0]
    assert seed["answer"].strip() and seed["satisfaction"] is not None and seed["safety"] is not None
    run_json = json.loads((run / "run.json").read_text())
    assert run_json["counts"]["bad_by_kind"] == {"missing_field": 1}
    assert run_json["usage"]["calls"] + run_json["usage"].get("cache_hits", 0) >= 2
    assert run_json["models"]["generator"].startswith("embedded")

    again = CliRunner().invoke(app, ["generate", "-i", str(src), "-o", str(run), "--steps", "0",
                                     "--max-tokens", "64"])
    assert again.exit_code == 0 and "1 already done" in " ".join(again.output.split())

    out = tmp_path / "sft.jsonl"
    result = CliRunner().invoke(app, ["export", str(run), "--format", "sft", "--out", str(out), "--min-safety", "0"])
    assert result.exit_code == 0, result.output
    row = json.loads(out.read_text().splitlines()[0])
    assert row["messages"][0]["content"] == "How can I help my toddler fall asleep?"
    assert seed["answer"].strip() in row["messages"][-1]["content"] and row["meta"]["record_id"] == "sleep"
