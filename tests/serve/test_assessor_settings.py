"""The proxy's assessor uses the proxy's own policy file and judge model, not global defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from pearlpoint.serve import csa
from pearlpoint.serve.config import ServeConfig


def _cfg(**kw) -> ServeConfig:
    return ServeConfig.model_validate(kw)


def test_settings_carry_policy_file_and_upstream_as_judge(tmp_path: Path) -> None:
    pol = tmp_path / "policy.yaml"
    cfg = _cfg(upstream={"model": "openai", "base_url": "http://127.0.0.1:9/v1", "model_name": "big",
                         "api_key": "sk-x"},
               csa={"assessor": "llm", "policy_file": str(pol)})
    s = csa.assessor_settings(cfg)
    assert s.assessor == "llm" and Path(s.policy_file) == pol
    j = s.judge_settings()
    assert (j.model, j.model_name, j.base_url) == ("openai", "big", "http://127.0.0.1:9/v1")
    assert j.api_key.get_secret_value() == "sk-x"


def test_settings_prefer_the_configured_judge() -> None:
    cfg = _cfg(upstream={"model": "openai", "base_url": "http://127.0.0.1:9/v1", "model_name": "big"},
               refine={"steps": 1, "judge_model": "openai", "judge_base_url": "http://127.0.0.1:8/v1",
                       "judge_model_name": "judge"},
               csa={"assessor": "cascade"})
    j = csa.assessor_settings(cfg).judge_settings()
    assert (j.model_name, j.base_url) == ("judge", "http://127.0.0.1:8/v1")


def test_build_assessor_passes_the_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pearlpoint.risk as risk

    seen = {}

    def fake(kind, settings=None, **kw):  # records what the engine asks for; no model is loaded
        seen["kind"], seen["settings"] = kind, settings
        return object()

    monkeypatch.setattr(risk, "get_assessor", fake)
    pol = tmp_path / "p.yaml"
    csa._build_assessor(_cfg(csa={"assessor": "embedded", "policy_file": str(pol)}))
    assert seen["kind"] == "embedded" and Path(seen["settings"].policy_file) == pol


def test_llm_assessor_is_built_on_the_proxy_upstream(mock_server) -> None:
    """Real construction (no call made): the LLM assessor's settings point at the proxy's upstream."""
    up = mock_server(reply="{}")
    cfg = _cfg(upstream={"model": "openai", "base_url": up.base_url, "model_name": "mock"}, csa={"assessor": "llm"})
    a = csa._build_assessor(cfg)
    j = a._settings.judge_settings()
    assert (j.model, j.base_url, j.model_name) == ("openai", up.base_url, "mock")
