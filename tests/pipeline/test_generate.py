from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from pearlpoint.errors import InputError
from pearlpoint.pipeline.export import export_run
from pearlpoint.pipeline.generate import GenerateConfig, generate_async
from pearlpoint.pipeline.inputs import PromptReader, prompt_id
from pearlpoint.pipeline.store import iter_run_records

from .scripted import ScriptedResponder


def run(cfg: GenerateConfig, responder):
    return asyncio.run(generate_async(cfg, responder=responder))


def write_jsonl(path: Path, rows: list[dict | bytes]) -> Path:
    with open(path, "wb") as fh:
        for r in rows:
            fh.write(r if isinstance(r, bytes) else (json.dumps(r, ensure_ascii=False) + "\n").encode())
    return path


def ids_on_disk(run_dir: Path) -> Counter:
    return Counter(r["id"] for r in iter_run_records(run_dir))


def messy_input(tmp_path: Path) -> Path:
    rows: list[dict | bytes] = [{"id": f"q{i}", "prompt": f"question number {i}"} for i in range(12)]
    rows.insert(3, {"id": "nofield", "question": "wrong column"})
    rows.insert(5, b'{"id": "latin", "prompt": "caf\xe9"}\n')  # not UTF-8
    rows.insert(7, {"id": "empty", "prompt": "   "})
    rows.insert(9, {"id": "q2", "prompt": "a duplicate id"})
    rows.insert(10, b'{"id": "broken", "prompt": \n')  # not JSON
    rows.append({"id": "chat", "prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                          {"role": "user", "content": "tell me more"}]})
    return write_jsonl(tmp_path / "in.jsonl", rows)


def test_bad_rows_are_reported_with_lines_and_skipped(tmp_path):
    src = messy_input(tmp_path)
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=4), ScriptedResponder())
    counts = run_json["counts"]
    assert counts["bad_by_kind"] == {"missing_field": 1, "unreadable": 2, "empty_prompt": 1, "duplicate_id": 1}
    assert counts["prompts"] == 13 and counts["succeeded"] == 13
    bad = {b["kind"]: b for b in run_json["bad_rows"]}
    assert bad["missing_field"]["line"] == 4 and bad["missing_field"]["field"] == "prompt"
    assert bad["duplicate_id"]["line"] == 10
    assert "UTF-8" in next(b["reason"] for b in run_json["bad_rows"] if b["line"] == 6)
    assert all(b["path"] == str(src) for b in run_json["bad_rows"])
    on_disk = ids_on_disk(tmp_path / "run")
    assert set(on_disk) == {f"q{i}" for i in range(12)} | {"chat"} and max(on_disk.values()) == 1
    chat = next(r for r in iter_run_records(tmp_path / "run") if r["id"] == "chat")
    assert chat["query"] == "tell me more"
    assert (tmp_path / "run" / "bad_rows.jsonl").read_text().count("\n") == 5
    assert run_json["usage"]["calls"] == 13 * 4


def test_rerun_skips_done_and_retry_failed(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"p{i}"} for i in range(20)])
    fail = {prompt_id("p3"), prompt_id("p7")}
    first = ScriptedResponder(fail_ids=fail)
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=5), first)
    assert (report.succeeded, report.failed) == (18, 2)
    failed = [r for r in iter_run_records(tmp_path / "run") if r["error"]]
    assert {r["id"] for r in failed} == fail and all("upstream refused" in r["error"] for r in failed)
    assert run_json["totals"] == {"records": 20, "ok": 18, "failed": 2}

    again = ScriptedResponder()
    report, _ = run(GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=5), again)
    assert again.calls == [] and report.skipped_done == 18 and report.skipped_failed == 2

    retry = ScriptedResponder()
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run", retry_failed=True), retry)
    assert set(retry.calls) == fail and report.succeeded == 2
    assert run_json["totals"] == {"records": 20, "ok": 20, "failed": 0}
    assert len(run_json["invocations"]) == 3
    stats = export_run(tmp_path / "run", "sft", tmp_path / "sft.jsonl")
    assert stats.qualified == 20  # the retried rows replace their failures, once each


def test_concurrency_is_bounded_and_used(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"p{i}"} for i in range(40)])
    responder = ScriptedResponder(delay_s=0.05)
    t0 = time.perf_counter()
    run(GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=8), responder)
    elapsed = time.perf_counter() - t0
    assert responder.max_in_flight == 8
    assert elapsed < 40 * 0.05 / 2  # far faster than one at a time


def test_limit_counts_usable_prompts(tmp_path):
    src = messy_input(tmp_path)
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run", limit=5), ScriptedResponder())
    assert report.succeeded == 5 and set(ids_on_disk(tmp_path / "run")) == {"q0", "q1", "q2", "q3", "q4"}


def test_budget_stops_cleanly_and_rerun_continues(tmp_path):
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"p{i}"} for i in range(10)])
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=1),
                           ScriptedResponder(budget=4))
    assert run_json["status"] == "budget_exhausted" and report.succeeded == 4
    assert "budget" in report.stopped
    assert sum(ids_on_disk(tmp_path / "run").values()) == 4  # nothing recorded as failed
    report, run_json = run(GenerateConfig(input=str(src), out=tmp_path / "run"), ScriptedResponder())
    assert report.succeeded == 6 and run_json["status"] == "complete"
    assert run_json["totals"]["ok"] == 10


def test_csv_ragged_row_parquet_and_dataset_dir(tmp_path):
    path = tmp_path / "in.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "prompt"])
        w.writerow(["a", "first"])
        w.writerow(["b", "second", "surplus"])
        w.writerow(["c", "third, with a comma"])
    report, run_json = run(GenerateConfig(input=str(path), out=tmp_path / "r1"), ScriptedResponder())
    assert report.succeeded == 2 and run_json["bad_rows"][0]["line"] == 3
    assert "ragged" in run_json["bad_rows"][0]["reason"]

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": ["x", "y", "z"], "question": ["one", "two", None]})
    (tmp_path / "ds").mkdir()
    pq.write_table(table, tmp_path / "ds" / "train.parquet")
    pq.write_table(table, tmp_path / "t.parquet")
    for src, out in ((tmp_path / "t.parquet", "r2"), (tmp_path / "ds", "r3")):
        report, run_json = run(GenerateConfig(input=str(src), field="question", out=tmp_path / out),
                               ScriptedResponder())
        assert report.succeeded == 2 and run_json["counts"]["bad_by_kind"] == {"missing_field": 1}


def test_missing_input_is_a_clean_error(tmp_path):
    with pytest.raises(InputError, match="no such input"):
        run(GenerateConfig(input=str(tmp_path / "nope.jsonl"), out=tmp_path / "run"), ScriptedResponder())
    assert not (tmp_path / "run").exists()
    reader = PromptReader(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError):
        list(reader)


KILL_SCRIPT = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    from pipeline.scripted import ScriptedResponder
    from pearlpoint.pipeline.generate import GenerateConfig, generate_async
    cfg = GenerateConfig(input={src!r}, out={out!r}, concurrency=6)
    asyncio.run(generate_async(cfg, responder=ScriptedResponder(delay_s=0.02)))
""")


def test_kill_9_then_rerun_has_every_row_exactly_once(tmp_path):
    n = 400
    src = write_jsonl(tmp_path / "in.jsonl", [{"prompt": f"prompt {i} " + "x" * 200} for i in range(n)])
    out = tmp_path / "run"
    script = tmp_path / "go.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parents[1]), src=str(src), out=str(out)))
    proc = subprocess.Popen([sys.executable, str(script)])
    records = out / "records.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if records.exists() and records.read_bytes().count(b"\n") >= 40:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = records.read_bytes().count(b"\n")
    assert 40 <= before < n, "the kill should land mid-run"
    with open(records, "ab") as fh:  # simulate a write torn by the crash
        fh.write(b'{"id": "h0000", "query": "torn')
    proc = subprocess.run([sys.executable, str(script)], check=True, timeout=120)
    counts = ids_on_disk(out)
    assert len(counts) == n and set(counts.values()) == {1}
    lines = records.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(x) for x in lines[:-1])  # no corrupted line left
