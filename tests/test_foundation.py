"""Config precedence, prompt rendering, data readers, and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pearlpoint.config import get_settings
from pearlpoint.errors import ConfigError, InputError, PearlError
from pearlpoint.io import AppendWriter, iter_rows, read_jsonl_tolerant
from pearlpoint.prompts import detect_language, render, render_messages


def test_config_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "pearl.toml"
    cfg.write_text('concurrency = 3\nmax_tokens = 100\nbase_url = "http://file/v1"\n')
    s = get_settings(cfg)
    assert (s.concurrency, s.max_tokens, s.base_url) == (3, 100, "http://file/v1")
    monkeypatch.setenv("PEARL_CONCURRENCY", "5")
    s = get_settings(cfg)
    assert s.concurrency == 5 and s.max_tokens == 100
    s = get_settings(cfg, concurrency=7, max_tokens=None)
    assert s.concurrency == 7 and s.max_tokens == 100


def test_config_errors_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "pearl.yaml"
    bad.write_text("concurency: 3\n")
    with pytest.raises(ConfigError, match=r"pearl.yaml: unknown setting 'concurency'"):
        get_settings(bad)
    bad.write_text("concurrency: lots\n")
    with pytest.raises(ConfigError, match=r"pearl.yaml: invalid setting 'concurrency'"):
        get_settings(bad)


def test_template_injection_passes_through_verbatim() -> None:
    evil = "{{ 7*7 }} {response} {% for x in y %}{{ config }}"
    out = render("llm_json_reask", lang="en", error=evil)
    assert evil in out and "49" not in out


def test_templates_exist_in_both_languages_and_strict() -> None:
    assert "JSON" in render("llm_json_instruction", lang="zh", schema="{}")
    with pytest.raises(PearlError, match="undefined"):
        render("llm_json_instruction", lang="en")
    msgs = render_messages("llm_json_reask", lang="en", error="x")
    assert msgs[0].role == "user"


def test_detect_language() -> None:
    assert detect_language("如何安全地储存药物？") == "zh"
    assert detect_language("How do I store medicine safely?") == "en"


def test_iter_rows_reports_bad_rows_with_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "in.jsonl"
    p.write_bytes(b'{"prompt": "a"}\n{"prompt": \n{"other": 1}\n\xff\xfe\n{"prompt": ""}\n{"prompt": "b"}\n')
    rows = list(iter_rows(p, field="prompt"))
    assert [r.data["prompt"] for r in rows if r.ok] == ["a", "b"]
    errors = [str(r.error) for r in rows if not r.ok]
    assert any(":2:" in e and "not valid JSON" in e for e in errors)
    assert any(":3" in e and "field 'prompt'" in e for e in errors)
    assert any("UTF-8" in e for e in errors)
    assert any("empty" in e for e in errors)


def test_csv_ragged_row(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text('id,prompt\n1,hello\n2,too,many\n3,"multi\nline"\n')
    rows = list(iter_rows(p, field="prompt"))
    assert [r.data["prompt"] for r in rows if r.ok] == ["hello", "multi\nline"]
    assert "ragged" in str(rows[1].error) and ":3" in str(rows[1].error)


def test_missing_file_and_unknown_type(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        list(iter_rows(tmp_path / "nope.jsonl"))
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(InputError, match="unsupported file type"):
        list(iter_rows(tmp_path / "x.xlsx"))


def test_append_writer_survives_torn_tail(tmp_path: Path) -> None:
    p = tmp_path / "out.jsonl"
    with AppendWriter(p) as w:
        w.write({"id": 1})
    with open(p, "ab") as fh:
        fh.write(b'{"id": 2, "torn')
    assert [r["id"] for r in read_jsonl_tolerant(p)] == [1]
    with AppendWriter(p) as w:
        w.write({"id": 3})
    assert [r["id"] for r in read_jsonl_tolerant(p)] == [1, 3]
    assert all(json.loads(line) for line in p.read_text().splitlines())


def _pearl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "pearlpoint", *args], capture_output=True, text=True, env=e,
                          timeout=300)


def test_cli_help_version_and_clean_errors() -> None:
    r = _pearl("--version")
    assert r.returncode == 0 and "pearlpoint" in r.stdout
    r = _pearl("--help")
    assert r.returncode == 0 and "chat" in r.stdout
    r = _pearl("chat", "--model", "nope", "hi")
    assert r.returncode == 2 and "Traceback" not in r.stderr and "model" in r.stderr
    r = _pearl("chat", "--model", "openai", "--base-url", "http://127.0.0.1:9/v1", "hi",
               env={"PEARL_MAX_RETRIES": "0"})
    assert r.returncode == 2 and "cannot reach" in r.stderr and "Traceback" not in r.stderr


def test_cli_usage_errors_are_one_clean_message() -> None:
    for args in (["solve", "--bogus"], ["export"], ["chat"]):
        r = _pearl(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr and "Error" in r.stderr
    r = _pearl()
    assert r.returncode == 0 and "Usage" in r.stdout


def test_cli_error_with_brackets_is_printed_verbatim() -> None:
    r = _pearl("chat", "--model", "openai", "--base-url", "http://127.0.0.1:9/[red]v1[/x]", "hi",
               env={"PEARL_MAX_RETRIES": "0"})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "[red]v1[/x]" in r.stderr


def test_cli_config_show_masks_secrets() -> None:
    r = _pearl("config", "show", "--json", env={"PEARL_API_KEY": "sk-secret-123456"})
    data = json.loads(r.stdout)
    assert data["api_key"] == "****3456"
    assert "secret" not in r.stdout


@pytest.mark.slow
def test_cli_chat_streams_from_embedded_model() -> None:
    r = _pearl("chat", "--max-tokens", "12", "Say hello.")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


@pytest.mark.slow
def test_cli_chat_against_llama_cpp_server() -> None:
    """`pearl chat --model openai` against a real llama.cpp server on loopback."""
    pytest.importorskip("llama_cpp.server")
    import time
    import urllib.request

    from pearlpoint.llm.embedded import find_default_gguf
    from pearlpoint.llm.mockserver import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(find_default_gguf()),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        r = _pearl("chat", "--model", "openai", "--base-url", f"http://127.0.0.1:{port}/v1", "--max-tokens", "12", "hi")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
