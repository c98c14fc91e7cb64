"""The bundled SmolLM2 GGUF becomes a transformers model that still knows things."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pearlpoint.errors import PearlError

pytestmark = pytest.mark.slow


def test_convert_bundled_gguf_and_answer_through_hf_backend(tmp_path):
    from pearlpoint.cli import app
    from pearlpoint.llm import GenerationParams, get_model, run_sync

    out = tmp_path / "smollm2"
    result = CliRunner().invoke(app, ["convert-gguf", "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert json.loads((out / "pearlpoint-convert.json").read_text())["parameters"] > 100_000_000
    again = CliRunner().invoke(app, ["convert-gguf", "--out", str(out)])
    assert "already converted" in " ".join(again.output.split())

    model = get_model("hf", model_name=str(out), cache=False)
    res = run_sync(model.chat("What is the capital of France?", params=GenerationParams(max_tokens=16)))
    assert "Paris" in res.text


def test_missing_gguf_is_a_clean_error(tmp_path):
    from pearlpoint.train.convert import convert_gguf

    with pytest.raises(PearlError, match="no such GGUF"):
        convert_gguf(tmp_path / "o", gguf=tmp_path / "missing.gguf")
