"""`pearl doctor`: real checks on this install, a failing row with its fix, and the --json shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pearlpoint.llm.mockserver import free_port

ROW_KEYS = {"check", "status", "required", "detail", "fix"}


def _doctor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "400", **env}
    return subprocess.run([sys.executable, "-m", "pearlpoint", "doctor", *args], capture_output=True,
                          text=True, env=full, timeout=300, stdin=subprocess.DEVNULL)


def _rows(out: subprocess.CompletedProcess[str]) -> tuple[bool, dict[str, dict[str, Any]]]:
    data = json.loads(out.stdout)
    assert set(data) == {"ok", "checks"}
    for row in data["checks"]:
        assert set(row) == ROW_KEYS, row
        assert row["status"] in ("ok", "warn", "fail")
        assert row["status"] == "ok" or row["fix"], f"a failing row needs a fix: {row}"
    return data["ok"], {r["check"]: r for r in data["checks"]}


def test_json_on_this_install_passes_every_required_check() -> None:
    out = _doctor("--json")
    ok, rows = _rows(out)
    assert out.returncode == 0 and ok, out.stdout
    for name in ("python", "extra [embedded]", "llama.cpp build", "llama.cpp load check", "cpu flags",
                 "GGUF model", "MiniLM encoder", "ONNX Runtime", "response cache", "audit log (pearl serve)"):
        assert name in rows, name
    assert rows["llama.cpp load check"]["status"] == "ok"
    assert "SmolLM2" in rows["GGUF model"]["detail"]
    assert rows["llama.cpp build"]["detail"].startswith("llama-cpp-python ")
    assert "upstream" not in rows


def test_closed_loopback_upstream_is_a_failing_row_and_exit_1() -> None:
    port = free_port()  # bound then released: nothing listens there
    out = _doctor("--json", "--upstream", f"http://127.0.0.1:{port}/v1", "--timeout", "2")
    ok, rows = _rows(out)
    assert out.returncode == 1 and not ok
    up = rows["upstream"]
    assert up["status"] == "fail" and up["required"]
    assert f"GET http://127.0.0.1:{port}/v1/models: unreachable" in up["detail"]
    assert up["fix"] == "start the server or fix the URL"


def test_live_upstream_lists_its_models(mock_server: Any) -> None:
    srv = mock_server(model="tiny-upstream")
    out = _doctor("--json", "--upstream", srv.base_url)
    ok, rows = _rows(out)
    assert out.returncode == 0 and ok, rows.get("upstream")
    assert rows["upstream"]["status"] == "ok" and "tiny-upstream" in rows["upstream"]["detail"]


def test_crashing_build_shows_cause_and_fix_in_the_table(tmp_path: Path) -> None:
    out = _doctor(XDG_CACHE_HOME=str(tmp_path), PEARL_LLAMA_CHECK_SIMULATE="sigill")
    assert out.returncode == 1
    line = next(ln for ln in out.stdout.splitlines() if "llama.cpp load check" in ln)
    assert "fail" in line
    assert "llama.cpp build uses CPU instructions this CPU lacks (SIGILL)" in line
    assert "PEARL_LLAMA_BUILD=portable bash scripts/install-llama.sh .venv/bin/python" in line


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs /proc")
def test_unwritable_audit_folder_is_an_optional_warning() -> None:
    out = _doctor("--json", "--audit-path", "/proc/pearl-doctor-test/audit.sqlite")
    ok, rows = _rows(out)
    audit = rows["audit log (pearl serve)"]
    assert audit["status"] == "warn" and not audit["required"] and "not writable" in audit["detail"]
    assert ok and out.returncode == 0, "an optional row does not fail the run"
