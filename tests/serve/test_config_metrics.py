"""The serve config file (YAML/TOML, env references, errors naming file and field) and /metrics."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from pearlpoint.errors import ConfigError
from pearlpoint.serve.auth import hash_key
from pearlpoint.serve.config import load_config
from pearlpoint.serve.metrics import Histogram


def test_yaml_and_toml_with_env_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_TOKEN", "sk-from-env")
    y = tmp_path / "s.yaml"
    y.write_text(f"""
upstream: {{model: openai, base_url: "http://127.0.0.1:9/v1", api_key: "${{UPSTREAM_TOKEN}}"}}
models: [a, b]
auth: {{keys: [{{name: k, hash: "{hash_key('x')}", rate_limit_rpm: 30}}]}}
refine: {{steps: 2}}
""")
    cfg = load_config(y)
    assert cfg.upstream.api_key == "sk-from-env" and cfg.models == ["a", "b"] and cfg.refine.steps == 2
    assert cfg.refine.levels == ["R1", "R2"]  # refine stays off for R0 unless asked
    t = tmp_path / "s.toml"
    t.write_text('models = ["m"]\n[upstream]\nmodel = "embedded"\n[limits]\nmax_body_bytes = 4096\n')
    assert load_config(t).limits.max_body_bytes == 4096
    assert load_config(None).upstream.model == "embedded"


@pytest.mark.parametrize("text, needle", [
    ("upstream: {model: openai}\n", "upstream.base_url is required"),
    ("limits: {max_body_bytes: lots}\n", "field 'limits.max_body_bytes'"),
    ("auth: {keys: [{name: a, hash: plaintext}]}\n", "raw keys are not accepted"),
    ("upstream: {model: gpt}\n", "field 'upstream.model'"),
    ("models: []\n", "at least one model"),
    ("upstream: {api_key: '${NOT_SET_ANYWHERE_123}'}\n", "NOT_SET_ANYWHERE_123 is not set"),
    ("auth: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "must be a mapping"),
])
def test_bad_config_names_file_and_field(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(p) in str(ei.value) and needle in str(ei.value)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_histogram_exposition_is_cumulative() -> None:
    h = Histogram("x_seconds", "help", buckets=(0.1, 1.0))
    for v in (0.05, 0.5, 5.0):
        h.observe(v, route="r")
    lines = h.render()
    assert 'x_seconds_bucket{route="r",le="0.1"} 1' in lines
    assert 'x_seconds_bucket{route="r",le="1"} 2' in lines
    assert 'x_seconds_bucket{route="r",le="+Inf"} 3' in lines
    assert 'x_seconds_count{route="r"} 3' in lines


def test_metrics_endpoint_counts_decisions_latency_and_errors(mock_server, start_proxy, client_for) -> None:
    up = mock_server(reply="ok")
    srv = start_proxy(up.base_url)
    c = client_for(srv)
    c.chat.completions.create(model="pearlpoint", messages=[{"role": "user", "content": "Say hi."}])
    c.chat.completions.create(model="pearlpoint", messages=[{"role": "user", "content": "Say hello."}])
    httpx.post(srv.base_url + "/chat/completions", content=b"{", headers={"Authorization": "Bearer nope"})
    r = httpx.get(srv.url + "/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'pearl_requests_total{route="/v1/chat/completions",status="200"} 2' in text
    assert 'pearl_requests_total{route="/v1/chat/completions",status="401"} 1' in text
    m = re.search(r'pearl_decisions_total\{level="R0",strategy="([a-z_]+)"\} 2', text)
    assert m, text
    assert 'pearl_request_duration_seconds_count{route="/v1/chat/completions"} 3' in text
    for stage in ("assess", "solve", "steer", "upstream"):
        assert f'pearl_stage_duration_seconds_count{{stage="{stage}"}} 2' in text
    assert "pearl_inflight_requests 0" in text
    # every sample line parses as `name{labels} number`
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r'[a-z_]+(\{[^}]*\})? -?[0-9.e+Inf-]+', line), line


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from pearlpoint.cli import app

    out = CliRunner().invoke(app, ["serve", "--example-config"])
    assert out.exit_code == 0 and "upstream:" in out.output
    p = tmp_path / "serve.yaml"
    p.write_text(out.output)
    monkeypatch.setenv("UPSTREAM_API_KEY", "sk-x")
    cfg = load_config(p)
    assert cfg.upstream.api_key == "sk-x" and cfg.auth.keys[1].admin and cfg.refine.steps == 0
