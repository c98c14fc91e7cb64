"""`pearl demo`: the main job end to end on the embedded model, its resume, its degraded modes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pearlpoint.demo import DEMO_PROMPTS, Demo, DemoConfig, load_prompts, render_report
from pearlpoint.errors import InputError


def test_sample_covers_personas_languages_and_levels() -> None:
    assert {p.persona for p in DEMO_PROMPTS} >= {"distressed", "curious", "professional", "attacker"}
    assert {p.lang for p in DEMO_PROMPTS} == {"en", "zh"}
    assert {p.expect for p in DEMO_PROMPTS} == {"R0", "R1", "R2"}
    assert 8 <= len(DEMO_PROMPTS) <= 10 and len({p.id for p in DEMO_PROMPTS}) == len(DEMO_PROMPTS)


def test_own_prompts_file_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "p.jsonl"
    good.write_text('{"text": "How do vaccines work?"}\n{"id": "x", "prompt": "怎样学习游泳？", "persona": "curious"}\n')
    ps = load_prompts(good)
    assert [p.lang for p in ps] == ["en", "zh"] and ps[1].id == "x"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"persona": "attacker"}\n')
    with pytest.raises(InputError) as ei:
        load_prompts(bad)
    assert "bad.jsonl:2" in str(ei.value) and "text" in str(ei.value)


@pytest.mark.slow
def test_demo_end_to_end_on_embedded_model_and_resume(tmp_path: Path) -> None:
    from pearlpoint.cli import app

    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--limit", "1", "--steps", "1", "--max-tokens", "48", "--eval-limit", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "raw vs CSA" in result.output and "report:" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert [r["id"] for r in summary["results"]] == [p.id for p in DEMO_PROMPTS[:1]]
    assert summary["usage"]["calls"] + summary["usage"]["cache_hits"] >= 4  # raw, forward, judges, eval
    for r in summary["results"]:
        assert r["level"] in ("R0", "R1", "R2") and r["strategy"]
        assert r["raw_answer"].strip() and r["csa_answer"].strip()
        assert r["iterates"] and any(it["chosen"] for it in r["iterates"])
        for arm in ("raw", "csa"):  # both answers judged, or the failure recorded
            s = r[arm]
            assert (s["constructive"] is not None and -1 <= s["constructive"] <= 1) or s["error"]
    assert "pairs" in summary["orpo"] and (out / "orpo.jsonl").exists()
    ev = summary["evaluation"]
    assert "skipped" not in ev, ev
    assert (out / "eval-raw" / "report.html").exists() and (out / "eval-csa" / "report.html").exists()
    report = (out / "report.html").read_text()
    for r in summary["results"]:
        assert r["id"] in report
    # a rerun with the same settings resumes: nothing is generated again
    again = CliRunner().invoke(app, args + ["--json"])
    assert again.exit_code == 0, again.output
    s2 = json.loads(again.output[again.output.index("{"):])
    assert [r["csa_answer"] for r in s2["results"]] == [r["csa_answer"] for r in summary["results"]]
    assert [r["seconds"] for r in s2["results"]] == [r["seconds"] for r in summary["results"]]
    assert s2["usage"]["calls"] == 0  # nothing generated or judged again


def test_demo_degrades_when_siblings_are_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 mock_server) -> None:
    """A missing export or eval module, or a model whose judge answers are unusable, is reported in
    the summary and the report; the run still completes."""
    import pearlpoint.demo as demo_mod

    real_optional = demo_mod._optional

    def fake_optional(module: str):
        if module in ("pearlpoint.pipeline.export", "pearlpoint.eval.runner"):
            return None, f"{module} unavailable (ImportError: simulated)"
        return real_optional(module)

    monkeypatch.setattr(demo_mod, "_optional", fake_optional)
    up = mock_server(reply="Certainly. Here is a plain answer without any JSON.")
    cfg = DemoConfig(out=tmp_path / "d", model="openai", base_url=up.base_url, model_name="mock", limit=2, steps=1,
                     max_tokens=32)
    summary = Demo(cfg).run()
    assert summary.orpo["skipped"].startswith("pearlpoint.pipeline.export unavailable")
    assert "pearlpoint.eval.runner unavailable" in summary.evaluation["skipped"]
    assert len(summary.results) == 2
    for r in summary.results:
        assert r.raw_answer.startswith("Certainly")
        assert r.raw.error and "judge" in r.raw.error  # a judge that cannot answer in JSON is recorded
    html = render_report(summary)
    assert "simulated" in html and "Skipped" in html
    assert (tmp_path / "d" / "report.html").exists()
