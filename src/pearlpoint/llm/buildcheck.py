"""Is the installed llama.cpp build safe to load here? Checked once per build, in a child process.

Why: a llama.cpp built with ``GGML_NATIVE=ON`` carries every instruction its *build* CPU had; on a
CPU without one of them the first decode dies by SIGILL and takes the whole process with it,
printing nothing. So before the embedded backend loads llama.cpp into this process, a child
process loads the GGUF and generates one token. A child killed by a signal becomes a one-line
:class:`BuildError` naming the cause and the rebuild command, instead of a silent crash.

The verdict is cached in ``<cache dir>/llama-check.json`` under a key made of the llama-cpp-python
version, its ``pearl_build.json``, the size and mtime of every file in its ``lib`` folder and the
GGUF path, so a rebuild or another model is checked again and every other load costs a file read.

``PEARL_SKIP_LLAMA_CHECK=1`` skips the check (a build you know is fine, or a sandbox that forbids
child processes); ``PEARL_LLAMA_CHECK_TIMEOUT`` sets the child's time limit in seconds (default 120).
``PEARL_LLAMA_CHECK_SIMULATE=sigill|fail`` makes the child crash on purpose, for tests; simulated
verdicts are never cached.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pearlpoint.config import cache_dir
from pearlpoint.errors import BuildError

FIX = ("rebuild it portable: PEARL_LLAMA_BUILD=portable bash scripts/install-llama.sh .venv/bin/python "
       "(or make clean install)")
_MEMO: dict[str, LoadCheck] = {}
_LOCK = threading.Lock()
_MAX_ENTRIES = 32

# Run by the child: load the model, decode a prompt, sample one token. Never imported here.
_CHILD = r"""
import os, signal, sys
sim = os.environ.get("PEARL_LLAMA_CHECK_SIMULATE", "")
if sim == "sigill":
    os.kill(os.getpid(), signal.SIGILL)
if sim == "fail":
    sys.exit("simulated load failure")
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=max(1, os.cpu_count() or 1), verbose=False, seed=0)
out = llm.create_completion("The capital of France is", max_tokens=1, temperature=0.0)
print("ok", out["usage"]["completion_tokens"], flush=True)
llm.close()
"""


@dataclass(frozen=True)
class BuildInfo:
    """What is installed: read from the package's files, without importing (and so loading) it."""

    version: str
    level: str  # portable | native | unknown (not built by scripts/install-llama.sh)
    cmake_args: str
    package_dir: Path
    lib_files: tuple[tuple[str, int, int], ...]  # (name, mtime_ns, size) of each shared library


@dataclass(frozen=True)
class LoadCheck:
    ok: bool
    reason: str  # one line; empty when ok
    returncode: int | None = None
    cached: bool = False
    seconds: float = 0.0


def build_info() -> BuildInfo | None:
    """The installed llama-cpp-python, or None when it is not installed."""
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    pkg = Path(spec.origin).parent
    try:
        ver = version("llama-cpp-python")
    except PackageNotFoundError:
        ver = "unknown"
    level, cmake_args = "unknown", ""
    try:
        meta = json.loads((pkg / "pearl_build.json").read_text(encoding="utf-8"))
        level, cmake_args = str(meta.get("level", "unknown")), str(meta.get("cmake_args", ""))
    except (OSError, ValueError, AttributeError):
        pass
    libs = []
    lib_dir = pkg / "lib"
    if lib_dir.is_dir():
        for f in sorted(lib_dir.iterdir()):
            try:
                st = f.stat()
            except OSError:
                continue
            libs.append((f.name, st.st_mtime_ns, st.st_size))
    return BuildInfo(ver, level, cmake_args.strip(), pkg, tuple(libs))


def check_key(info: BuildInfo, gguf: Path) -> str:
    blob = json.dumps([info.version, info.level, info.cmake_args, str(info.package_dir),
                       [list(x) for x in info.lib_files], str(gguf.resolve())])
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _cache_file() -> Path:
    return cache_dir() / "llama-check.json"


def _read_cache() -> dict[str, Any]:
    try:
        data = json.loads(_cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(key: str, result: LoadCheck) -> None:
    """Best effort: a read-only cache folder only means the check runs again next time."""
    data = _read_cache()
    data[key] = {"ok": result.ok, "reason": result.reason, "returncode": result.returncode,
                 "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    while len(data) > _MAX_ENTRIES:
        data.pop(next(iter(data)))
    path = _cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _run_child(gguf: Path, timeout_s: float) -> LoadCheck:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(gguf)], capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return LoadCheck(False, f"llama.cpp load check did not finish in {timeout_s:g}s (a very busy machine? "
                         "raise PEARL_LLAMA_CHECK_TIMEOUT or set PEARL_SKIP_LLAMA_CHECK=1)", None,
                         seconds=time.perf_counter() - t0)
    secs = time.perf_counter() - t0
    rc = proc.returncode
    if rc == 0 and proc.stdout.startswith("ok"):
        return LoadCheck(True, "", 0, seconds=secs)
    if rc < 0:
        sig = _signal_name(-rc)
        if -rc == signal.SIGILL:
            cause = "llama.cpp build uses CPU instructions this CPU lacks (SIGILL)"
        else:
            cause = f"llama.cpp crashed loading {gguf.name} ({sig})"
        return LoadCheck(False, f"{cause}; {FIX}", rc, seconds=secs)
    tail = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
    detail = tail[-1][:200] if tail else f"exit status {rc}"
    return LoadCheck(False, f"llama.cpp failed to load {gguf.name} and generate a token ({detail}); {FIX}",
                     rc, seconds=secs)


def check_llama_build(gguf: Path, *, use_cache: bool = True, timeout_s: float | None = None) -> LoadCheck:
    """Load ``gguf`` and generate one token in a child process; the verdict is cached per build."""
    info = build_info()
    if info is None:
        return LoadCheck(False, "llama-cpp-python is not installed: pip install 'pearlpoint[embedded]'")
    simulated = bool(os.environ.get("PEARL_LLAMA_CHECK_SIMULATE"))
    key = check_key(info, gguf)
    with _LOCK:
        if use_cache and not simulated:
            if key in _MEMO:
                return replace(_MEMO[key], cached=True)
            hit = _read_cache().get(key)
            if isinstance(hit, dict) and isinstance(hit.get("ok"), bool):
                res = LoadCheck(hit["ok"], str(hit.get("reason", "")), hit.get("returncode"), cached=True)
                _MEMO[key] = res
                return res
        if timeout_s is None:
            try:
                timeout_s = float(os.environ.get("PEARL_LLAMA_CHECK_TIMEOUT", "120"))
            except ValueError:
                timeout_s = 120.0
        res = _run_child(gguf, timeout_s)
        # a timeout says the machine was busy, not that the build is bad: check again next time
        if not simulated and res.returncode is not None:
            _MEMO[key] = res
            _write_cache(key, res)
        return res


def skip_requested() -> bool:
    return os.environ.get("PEARL_SKIP_LLAMA_CHECK", "").strip().lower() in ("1", "true", "yes", "on")


def ensure_llama_build(gguf: Path) -> None:
    """Raise a one-line BuildError when this build cannot run ``gguf`` here (see the module doc)."""
    if skip_requested() or build_info() is None:
        return  # not installed: the caller's import reports it with the install command
    res = check_llama_build(gguf)
    if not res.ok:
        raise BuildError(res.reason)
