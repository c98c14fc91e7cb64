"""Config reload without a restart: the admin endpoint and SIGHUP; a bad file keeps the old config."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from pearlpoint.llm.mockserver import free_port
from pearlpoint.serve.auth import hash_key
from tests.serve.conftest import ADMIN_KEY, KEY, base_config

NEW_KEY = "pk-added-by-reload-0003"
CHAT = {"model": "pearlpoint", "messages": [{"role": "user", "content": "hello"}]}


def _post(url: str, key: str) -> int:
    return httpx.post(url + "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {key}"},
                      timeout=30).status_code


def test_admin_reload_adds_key_and_keeps_config_on_bad_file(mock_server, start_proxy, tmp_path: Path) -> None:
    up = mock_server(reply="ok")
    path = tmp_path / "serve.yaml"
    cfg = base_config(tmp_path, up.base_url)
    path.write_text(yaml.safe_dump(cfg))
    srv = start_proxy(None, config_path=path)
    assert _post(srv.url, NEW_KEY) == 401

    cfg["auth"]["keys"].append({"name": "bob", "hash": hash_key(NEW_KEY)})
    cfg["models"] = ["pearlpoint", "pearlpoint-v2"]
    path.write_text(yaml.safe_dump(cfg))
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 403  # alice is not an admin
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert _post(srv.url, NEW_KEY) == 200
    assert httpx.get(srv.url + "/healthz").json()["models"] == ["pearlpoint", "pearlpoint-v2"]

    path.write_text("upstream: {model: openai}\nauth: [oops\n")  # broken YAML
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 400 and "serve.yaml" in r.json()["error"]["message"]
    path.write_text(yaml.safe_dump({**cfg, "limits": {"max_body_bytes": "lots"}}))  # wrong type
    r = httpx.post(srv.url + "/admin/reload", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 400 and "limits.max_body_bytes" in r.json()["error"]["message"]
    assert _post(srv.url, NEW_KEY) == 200  # still version 2
    assert httpx.get(srv.url + "/healthz").json()["config_version"] == 2
    assert 'pearl_config_reloads_total{result="error"} 2' in httpx.get(srv.url + "/metrics").text


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP on this platform")
def test_sighup_reloads_a_running_server(mock_server, tmp_path: Path) -> None:
    up = mock_server(reply="ok")
    path = tmp_path / "serve.yaml"
    cfg = base_config(tmp_path, up.base_url)
    path.write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pearlpoint.serve", "--config", str(path), "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        assert _post(url, NEW_KEY) == 401
        cfg["auth"]["keys"].append({"name": "bob", "hash": hash_key(NEW_KEY)})
        path.write_text(yaml.safe_dump(cfg))
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while httpx.get(url + "/healthz").json()["config_version"] != 2:
            assert time.monotonic() < deadline, "SIGHUP did not reload"
            time.sleep(0.1)
        assert _post(url, NEW_KEY) == 200
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_reload_keeps_command_line_overrides(csa_engine, mock_server, tmp_path: Path) -> None:
    from pearlpoint.serve.app import Proxy
    from pearlpoint.serve.config import load_config

    up = mock_server(reply="ok")
    path = tmp_path / "serve.yaml"
    cfg = base_config(tmp_path, up.base_url)
    path.write_text(yaml.safe_dump(cfg))
    overrides = {"refine__steps": 2, "upstream__model_name": "from-flag"}
    proxy = Proxy(load_config(path, **overrides), engine=csa_engine, warm_up=False, overrides=overrides)
    try:
        cfg["limits"] = {"max_messages": 7}
        path.write_text(yaml.safe_dump(cfg))
        assert proxy.reload()["version"] == 2
        st = proxy.state.cfg
        assert st.limits.max_messages == 7  # from the edited file
        assert st.refine.steps == 2 and st.upstream.model_name == "from-flag"  # flags still win
    finally:
        proxy.close()
