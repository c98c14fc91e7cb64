from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pearlpoint.errors import InputError, PearlError
from pearlpoint.train.data import read_training_rows
from pearlpoint.train.trainer import TrainOptions, train

pytestmark = pytest.mark.slow


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def changed(before, after) -> bool:
    return any(not (before[k] == after[k]).all() for k in before if k in after)


def answer_with_hf_backend(model_dir) -> object:
    from pearlpoint.llm import GenerationParams, get_model, run_sync

    model = get_model("hf", model_name=str(model_dir), cache=False)
    return run_sync(model.chat("How do I keep my passwords safe?", params=GenerationParams(max_tokens=8)))


def test_sft_via_cli_then_load_with_hf_backend(tiny_model, exported, tmp_path):
    from pearlpoint.cli import app

    out = tmp_path / "sft"
    cfg = tmp_path / "train.yaml"
    cfg.write_text("max_steps: 2\nlearning_rate: 0.001\nlogging_steps: 1\nweight_decay: 0.01\n")
    result = CliRunner().invoke(app, ["train", "sft", "--data", str(exported["sft"]), "--model", str(tiny_model),
                                      "--out", str(out), "--config", str(cfg)])
    assert result.exit_code == 0, result.output
    info = json.loads((out / "pearlpoint-train.json").read_text())
    assert info["global_step"] == 2 and info["options"]["learning_rate"] == 0.001
    assert info["options"]["extra"] == {"weight_decay": 0.01}
    assert any("loss" in e for e in info["log"])
    assert changed(weights(tiny_model), weights(out))
    res = answer_with_hf_backend(out)
    assert isinstance(res.text, str) and res.usage.completion_tokens > 0


def test_sft_data_masks_the_prompt(exported):
    rows = read_training_rows(exported["sft"], "sft")
    assert rows[0]["prompt"][-1]["role"] == "user" and rows[0]["completion"][0]["role"] == "assistant"
    assert "<think>" in rows[0]["completion"][0]["content"]


@pytest.mark.parametrize("method,lora", [("orpo", True), ("dpo", False)])
def test_preference_training(tiny_model, exported, tmp_path, method, lora):
    out = tmp_path / method
    res = train(TrainOptions(method=method, data=exported[method], model=str(tiny_model), out=out,
                             lora=lora, max_steps=2, learning_rate=1e-3, lora_r=4, lora_alpha=8))
    assert res.global_step == 2 and res.train_loss is not None
    keys = {k for e in res.log for k in e}
    assert any(k.startswith("rewards/") for k in keys)  # a preference objective really ran
    assert changed(weights(tiny_model), weights(out))
    if lora:
        assert (out / "adapter" / "adapter_config.json").exists()
        assert not any("lora" in k for k in weights(out))  # merged: a plain model directory
    assert answer_with_hf_backend(out).usage.completion_tokens > 0


def test_resume_from_checkpoint(tiny_model, exported, tmp_path):
    out = tmp_path / "resume"
    first = train(TrainOptions(method="sft", data=exported["sft"], model=str(tiny_model), out=out,
                               max_steps=2, save_steps=1))
    assert first.global_step == 2 and (out / "checkpoints" / "checkpoint-2").is_dir()
    second = train(TrainOptions(method="sft", data=exported["sft"], model=str(tiny_model), out=out,
                                max_steps=4, save_steps=1, resume=True))
    assert second.resumed_from.endswith("checkpoint-2") and second.global_step == 4
    assert len([e for e in second.log if "loss" in e]) == 4  # the first two steps' log was restored


def test_bad_data_and_model_are_clean_errors(tiny_model, exported, tmp_path):
    with pytest.raises(InputError, match=r"sft.jsonl:1: an orpo row needs chosen/prompt/rejected"):
        read_training_rows(exported["sft"], "orpo")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    with pytest.raises(InputError, match="no assistant answer"):
        read_training_rows(bad, "sft")
    with pytest.raises(PearlError, match="not a transformers model directory"):
        train(TrainOptions(method="sft", data=exported["sft"], model=str(tmp_path), out=tmp_path / "o"))
    with pytest.raises(PearlError, match="unknown training method"):
        train(TrainOptions(method="ppo", data=exported["sft"], model=str(tiny_model), out=tmp_path / "o"))
