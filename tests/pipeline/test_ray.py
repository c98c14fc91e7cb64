"""Scale-out on a real local Ray instance against real loopback OpenAI-compatible servers."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pearlpoint.pipeline.export import export_run
from pearlpoint.pipeline.generate import GenerateConfig
from pearlpoint.pipeline.loadtest import CallsFactory, scripted_csa_reply
from pearlpoint.pipeline.store import iter_run_records, record_files

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")


calls_factory = CallsFactory(calls_per_row=2)


@pytest.fixture(scope="module")
def local_ray():
    from pearlpoint.pipeline.ray_runner import init_ray

    r = init_ray(None)
    yield r
    r.shutdown()


def test_rows_spread_over_endpoints_and_resume(local_ray, mock_server, tmp_path):
    from pearlpoint.pipeline.ray_runner import generate_on_ray

    a, b = mock_server(delay_s=0.02, reply="from a"), mock_server(delay_s=0.02, reply="from b")
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"question {i}"}) + "\n" for i in range(40))
                   + '{"id": "r3", "prompt": "duplicate"}\n')
    cfg = GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=4, endpoints=[a.base_url, b.base_url])
    report, run_json = generate_on_ray(cfg, factory=calls_factory)
    assert report.succeeded == 40 and run_json["counts"]["bad_by_kind"] == {"duplicate_id": 1}
    shards = [p.name for p in record_files(tmp_path / "run") if p.stat().st_size]
    assert shards == ["records-w00.jsonl", "records-w01.jsonl"]
    counts = Counter(r["id"] for r in iter_run_records(tmp_path / "run"))
    assert len(counts) == 40 and set(counts.values()) == {1}
    assert len(a.requests) > 10 and len(b.requests) > 10 and len(a.requests) + len(b.requests) == 80
    answers = {r["iterates"][0]["answer"] for r in iter_run_records(tmp_path / "run")}
    assert answers == {"from a", "from b"}
    assert run_json["usage"]["calls"] == 80 and run_json["models"]["ray_workers"] == "2"

    report, _ = generate_on_ray(cfg, factory=calls_factory)
    assert report.attempted == 0 and report.skipped_done == 40


def test_lingo_on_ray_then_export_reads_shards(local_ray, mock_server, tmp_path):
    from pearlpoint.pipeline.ray_runner import generate_on_ray

    srv = mock_server(delay_s=0.01, reply=scripted_csa_reply)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"prompt": f"How do I bake bread, take {i}?"}) + "\n" for i in range(6)))
    cfg = GenerateConfig(input=str(src), out=tmp_path / "run", concurrency=3, steps=1, endpoints=[srv.base_url],
                         settings_overrides={"model": "openai", "model_name": "mock", "cache": False})
    report, run_json = generate_on_ray(cfg, workers=2)
    assert report.succeeded == 6, run_json.get("failed_examples")
    records = list(iter_run_records(tmp_path / "run"))
    assert all(r["iterates"][0]["satisfaction"] is not None for r in records)  # judged by the real loop
    stats = export_run(tmp_path / "run", "sft", tmp_path / "sft.jsonl")
    assert stats.qualified == 6
