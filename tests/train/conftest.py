from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random Llama with the real SmolLM2 tokenizer and chat template (from the bundled GGUF)."""
    from pearlpoint.train.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Path]:
    """SFT / ORPO / DPO files exported from hand-made records (the Record JSON contract)."""
    from pipeline.records_fixture import sample_records  # tests/ is on sys.path (rootdir packages)

    from pearlpoint.pipeline.export import export_run
    from pearlpoint.pipeline.store import RecordWriter

    root = tmp_path_factory.mktemp("export")
    with RecordWriter(root / "run" / "records.jsonl") as w:
        for i in range(3):
            for r in sample_records():
                w.write({**r, "id": f"{r['id']}-{i}"})
    out = {}
    for fmt in ("sft", "orpo", "dpo"):
        out[fmt] = root / f"{fmt}.jsonl"
        stats = export_run(root / "run", fmt, out[fmt])
        assert stats.rows_written > 0, json.dumps(stats.to_dict())
    return out
