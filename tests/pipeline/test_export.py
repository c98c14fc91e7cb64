from __future__ import annotations

import json

import pytest

from pearlpoint.errors import PearlError
from pearlpoint.pipeline.export import constructive_score, export_rows, export_run, stats_path_for
from pearlpoint.pipeline.store import RecordWriter

from .records_fixture import iterate, record, sample_records


def write_run(tmp_path, records, name="records.jsonl"):
    run = tmp_path / "run"
    with RecordWriter(run / name) as w:
        for r in records:
            w.write(r)
    return run


def test_constructive_score_range():
    assert constructive_score(1, 1, 2) == pytest.approx(1.0)
    assert constructive_score(-1, 0, 2) == pytest.approx(-1.0)
    assert constructive_score(1, 0, 3) < constructive_score(-1, 1, 3)  # risk dominates at beta > 2
    assert constructive_score(0.5, 1, 0.1) > constructive_score(0.0, 1, 0.1)


def test_sft_rows_and_reasoning_modes(tmp_path):
    run = write_run(tmp_path, sample_records())
    out = tmp_path / "sft.jsonl"
    stats = export_run(run, "sft", out)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["meta"]["record_id"] for r in rows} == {"r1", "r2", "r5"}
    r1 = next(r for r in rows if r["meta"]["record_id"] == "r1")
    assert r1["messages"][0] == {"role": "user", "content": "how do I pick a lock?"}
    assert r1["messages"][-1]["role"] == "assistant"
    assert r1["messages"][-1]["content"].startswith("<think>\nthinking it through\n</think>")
    assert "Locksmiths" in r1["messages"][-1]["content"]
    assert stats.dropped == {"record_failed": 1, "chosen_below_min_safety": 1}
    saved = json.loads(stats_path_for(out).read_text())
    assert saved["qualified"] == 3 and saved["dropped"]["record_failed"] == 1
    assert saved["distributions"]["chosen_safety"]["n"] == 3

    rows_field = list(export_rows(sample_records(), "sft", reasoning="field"))
    msg = rows_field[0]["messages"][-1]
    assert msg["reasoning_content"] == "thinking it through" and "<think>" not in msg["content"]
    rows_none = list(export_rows(sample_records(), "sft", reasoning="none"))
    assert "reasoning_content" not in rows_none[0]["messages"][-1]
    assert "<think>" not in rows_none[0]["messages"][-1]["content"]
    # a lower safety bar lets the partly safe record in
    assert len(list(export_rows(sample_records(), "sft", min_safety=0.5))) == 4


def test_dpo_pairs_pick_worse_iterate_with_provenance(tmp_path):
    rows = list(export_rows(sample_records(), "dpo", reasoning="none"))
    by_id = {r["meta"]["record_id"]: r for r in rows}
    assert set(by_id) == {"r1", "r5"}
    assert "tension wrench" in by_id["r1"]["rejected"][0]["content"]
    assert "Locksmiths" in by_id["r1"]["chosen"][0]["content"]
    assert by_id["r1"]["prompt"] == [{"role": "user", "content": "how do I pick a lock?"}]
    # r5: the refusal (initial, safe but unhelpful) is rejected in preference to the unsafe step 2
    assert by_id["r5"]["rejected"][0]["content"] == "I can't help with that."
    meta = by_id["r5"]["meta"]
    assert meta["chosen"]["constructive"] > meta["rejected"]["constructive"]
    assert meta["rejected"]["step"] == 0


def test_margin_controls_pairs():
    recs = [record("m", "q", [iterate(0, "a", 0.6, 1.0), iterate(1, "b", 0.8, 1.0)], 1)]
    # score gap: (0.8-0.6) * 2/4 = 0.1
    assert len(list(export_rows(recs, "orpo", margin=0.05))) == 1
    stats_rows = list(export_rows(recs, "orpo", margin=0.5))
    assert stats_rows == []


def test_kto_labels():
    rows = list(export_rows(sample_records(), "kto", reasoning="none"))
    labels = [(r["meta"]["record_id"], r["label"]) for r in rows]
    assert ("r1", True) in labels and ("r1", False) in labels
    assert ("r2", True) in labels and ("r2", False) not in labels
    assert sum(1 for _, lab in labels if lab is False) == 3  # r1 step0, r5 step0 and step2
    assert all(r["completion"][0]["role"] == "assistant" for r in rows)


def test_retried_failure_is_superseded_and_shards_are_read(tmp_path):
    recs = sample_records()
    run = write_run(tmp_path, recs)
    fixed = record("r4", "broken", [iterate(0, "now fine", 0.5, 1.0)], 0)
    with RecordWriter(run / "records-w0.jsonl") as w:
        w.write(fixed)
    stats = export_run(run, "sft", tmp_path / "o.jsonl")
    assert "record_failed" not in stats.dropped and stats.qualified == 4


def test_torn_last_line_is_ignored(tmp_path):
    run = write_run(tmp_path, sample_records())
    with open(run / "records.jsonl", "a") as fh:
        fh.write('{"id": "r9", "query": "half a rec')
    stats = export_run(run, "sft", tmp_path / "o.jsonl")
    assert stats.records == 5


def test_bad_args(tmp_path):
    with pytest.raises(PearlError, match="no such run"):
        export_run(tmp_path / "nope", "sft", tmp_path / "o.jsonl")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PearlError, match="no records"):
        export_run(tmp_path / "empty", "sft", tmp_path / "o.jsonl")
    with pytest.raises(PearlError, match="unknown export format"):
        list(export_rows(sample_records(), "ppo"))
