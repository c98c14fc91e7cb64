"""The llama.cpp load check: a build that would crash becomes one line naming the cause and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pearlpoint.errors import BuildError
from pearlpoint.llm import buildcheck
from pearlpoint.llm.embedded import find_default_gguf

pytestmark = pytest.mark.skipif(buildcheck.build_info() is None, reason="llama-cpp-python not installed")


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder and no in-process memo, so the child really runs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(buildcheck, "_MEMO", {})
    return tmp_path / "pearlpoint" / "llama-check.json"


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "COLUMNS": "400", "PEARL_CACHE": "0", **env}
    return subprocess.run([sys.executable, "-m", "pearlpoint", *args], capture_output=True, text=True,
                          env=full, timeout=300, stdin=subprocess.DEVNULL)


def test_sigill_child_is_one_line_error_with_the_fix(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEARL_LLAMA_CHECK_SIMULATE", "sigill")
    res = buildcheck.check_llama_build(find_default_gguf())
    assert not res.ok and res.returncode == -4
    with pytest.raises(BuildError) as info:
        buildcheck.ensure_llama_build(find_default_gguf())
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith("llama.cpp build uses CPU instructions this CPU lacks (SIGILL)")
    assert "PEARL_LLAMA_BUILD=portable bash scripts/install-llama.sh .venv/bin/python" in msg
    assert "make clean install" in msg
    assert not fresh_cache.exists(), "a simulated verdict must never be cached"


def test_failing_child_names_its_last_error_line(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEARL_LLAMA_CHECK_SIMULATE", "fail")
    res = buildcheck.check_llama_build(find_default_gguf())
    assert not res.ok and res.returncode == 1
    assert "(simulated load failure)" in res.reason and "\n" not in res.reason


def test_skip_variable_skips_the_check(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEARL_LLAMA_CHECK_SIMULATE", "sigill")
    monkeypatch.setenv("PEARL_SKIP_LLAMA_CHECK", "1")
    buildcheck.ensure_llama_build(find_default_gguf())  # would raise without the skip


def test_chat_with_a_crashing_build_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    out = _cli("chat", "a prompt for the crash test", XDG_CACHE_HOME=str(tmp_path),
               PEARL_LLAMA_CHECK_SIMULATE="sigill")
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("error: llama.cpp build uses CPU instructions this CPU lacks (SIGILL)")
    assert "PEARL_LLAMA_BUILD=portable" in lines[0]


def test_models_lists_embedded_as_unavailable_with_the_reason(tmp_path: Path) -> None:
    out = _cli("models", XDG_CACHE_HOME=str(tmp_path), PEARL_LLAMA_CHECK_SIMULATE="sigill")
    assert out.returncode == 0, out.stderr
    row = next(ln for ln in out.stdout.splitlines() if "embedded" in ln)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == "embedded" and cells[1] == "no"
    assert "llama.cpp build uses CPU instructions this CPU lacks (SIGILL)" in row


@pytest.mark.slow
def test_real_build_passes_once_then_comes_from_the_cache(fresh_cache: Path) -> None:
    gguf = find_default_gguf()
    first = buildcheck.check_llama_build(gguf)
    assert first.ok and first.returncode == 0 and not first.cached, first.reason
    stored = json.loads(fresh_cache.read_text())
    key = buildcheck.check_key(buildcheck.build_info(), gguf)  # type: ignore[arg-type]
    assert stored[key]["ok"] is True
    buildcheck._MEMO.clear()  # as a new process would see it
    again = buildcheck.check_llama_build(gguf)
    assert again.ok and again.cached
    buildcheck.ensure_llama_build(gguf)  # no error


def test_the_key_follows_the_build_and_the_model(tmp_path: Path) -> None:
    info = buildcheck.build_info()
    assert info is not None and info.lib_files, "the installed package has shared libraries"
    gguf = find_default_gguf()
    base = buildcheck.check_key(info, gguf)
    name, mtime, size = info.lib_files[0]
    rebuilt = replace(info, lib_files=((name, mtime + 1, size),) + info.lib_files[1:])
    assert buildcheck.check_key(rebuilt, gguf) != base
    assert buildcheck.check_key(replace(info, level="native"), gguf) != base
    other = tmp_path / "other.gguf"
    other.write_bytes(b"x")
    assert buildcheck.check_key(info, other) != base
