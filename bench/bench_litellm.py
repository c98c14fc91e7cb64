"""What the pearl guardrail adds to a LiteLLM proxy, next to `pearl serve`, in one run.

Processes as in production: a fake upstream that answers after 50 ms (``MockServerProcess``), the
proxy under test, and this client (httpx, concurrency 1 by default). Variants, one after another
against the same upstream and the same prompt mix (benign, risky and Chinese, every prompt distinct so
nothing is served from the assessor's cache):

- ``direct``: the upstream itself (the floor);
- ``litellm``: ``litellm --config`` with the model only;
- ``litellm+pearl``: the same with ``PearlGuardrail`` (pre_call + post_call, default_on);
- ``pearl-serve``: ``python -m pearlpoint.serve`` with its defaults (assess, steer, guard, audit);
- ``pearl-serve-assess-only``: ``csa.steer: false, csa.guard: false`` (pearl serve has no switch that
  skips the assessment itself; this is the closest to "without CSA").

The guardrail's added latency is ``litellm+pearl`` minus ``litellm``; pearl serve's is ``pearl-serve``
minus ``direct``. Needs the ``litellm`` extra (the ``litellm`` command next to this Python).

    nice python bench/bench_litellm.py --requests 60 --json docs/bench/litellm.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import KEY, cpu_seconds, fire, pct, prompts, start_proxy  # noqa: E402

MASTER = "sk-pearl-bench-3b9d6e0f1a2c4d5e6f708192a3b4c5d6"


def start_litellm(cfg: dict[str, Any], workdir: Path, port: int) -> tuple[subprocess.Popen, float]:
    """Start ``litellm --config`` and return it with the seconds it took to answer its health check."""
    path = workdir / f"litellm-{port}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cli = Path(sys.executable).parent / "litellm"
    if not cli.exists():
        raise SystemExit("the `litellm` command is not installed next to this Python: pip install 'pearlpoint[litellm]'")
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
           "PYTHONPATH": os.pathsep.join(x for x in (src, os.environ.get("PYTHONPATH", "")) if x)}
    log = open(workdir / f"litellm-{port}.log", "wb")  # noqa: SIM115 - the child owns it
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(cli), "--config", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"litellm did not start:\n{(workdir / f'litellm-{port}.log').read_text()[-3000:]}")
        time.sleep(0.2)


def summary(lat: list[float], err: list[str], wall: float) -> dict[str, Any]:
    return {"p50_ms": 1000 * pct(lat, .5), "p90_ms": 1000 * pct(lat, .9), "p99_ms": 1000 * pct(lat, .99),
            "mean_ms": 1000 * sum(lat) / max(1, len(lat)), "rps": len(lat) / wall if wall else 0.0,
            "ok": len(lat), "errors": len(err), "error_samples": err[:3]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=60, help="measured requests per variant")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--delay", type=float, default=0.05, help="upstream latency in seconds")
    ap.add_argument("--variants", default="direct,litellm,litellm+pearl,pearl-serve,pearl-serve-assess-only")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from pearlpoint.llm.mockserver import MockServerProcess, free_port
    from pearlpoint.serve.auth import hash_key

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    reply = ("Here is a short, friendly answer with a few concrete points you can use right away, "
             "plus one suggestion for where to read more.")
    warm_n = 10
    pool = prompts((args.requests + warm_n) * len(variants))
    res: dict[str, Any] = {"machine": f"{os.cpu_count()} cores, {platform.machine()}, python {platform.python_version()}",
                           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                           "load_avg_at_start": os.getloadavg(), "upstream_delay_ms": args.delay * 1000,
                           "requests": args.requests, "concurrency": args.concurrency, "variants": {}}
    from importlib.metadata import PackageNotFoundError, version

    try:
        res["litellm"] = version("litellm")
    except PackageNotFoundError:
        res["litellm"] = None

    with MockServerProcess(delay_s=args.delay, reply=reply) as up, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i, variant in enumerate(variants):
            texts = pool[i * (args.requests + warm_n):(i + 1) * (args.requests + warm_n)]
            warm, measured = texts[:warm_n], texts[warm_n:]
            proc: subprocess.Popen | None = None
            startup_s = None
            port = free_port()
            if variant == "direct":
                url, headers, model = up.base_url + "/chat/completions", {}, "mock"
            elif variant.startswith("litellm"):
                cfg: dict[str, Any] = {
                    "model_list": [{"model_name": "bench", "litellm_params": {
                        "model": "openai/mock", "api_base": up.base_url, "api_key": "sk-up"}}],
                    "router_settings": {"num_retries": 0},
                    "general_settings": {"master_key": MASTER}}
                if variant == "litellm+pearl":
                    cfg["guardrails"] = [{"guardrail_name": "pearl", "litellm_params": {
                        "guardrail": "pearlpoint.integrations.litellm_guardrail.PearlGuardrail",
                        "mode": ["pre_call", "post_call"], "default_on": True}}]
                proc, startup_s = start_litellm(cfg, work, port)
                url, headers, model = f"http://127.0.0.1:{port}/v1/chat/completions", {
                    "Authorization": f"Bearer {MASTER}"}, "bench"
            else:
                csa: dict[str, Any] = {"assessor": "embedded"}
                if variant == "pearl-serve-assess-only":
                    csa.update(steer=False, guard=False)
                cfg = {"upstream": {"model": "openai", "base_url": up.base_url, "model_name": "mock", "api_key": "sk-up",
                                    "timeout_s": 60, "max_retries": 0},
                       "auth": {"keys": [{"name": "bench", "hash": hash_key(KEY)}], "burst": 100000,
                                "default_rpm": 10_000_000},
                       "audit": {"path": str(work / f"audit-{variant}.sqlite")}, "csa": csa}
                t0 = time.perf_counter()
                proc = start_proxy(cfg, work, port)
                startup_s = time.perf_counter() - t0
                url, headers, model = f"http://127.0.0.1:{port}/v1/chat/completions", {
                    "Authorization": f"Bearer {KEY}"}, "pearlpoint"
            try:
                asyncio.run(fire(url, warm, args.concurrency, headers, model))
                cpu0 = cpu_seconds(proc.pid) if proc else 0.0
                lat, err, wall = asyncio.run(fire(url, measured, args.concurrency, headers, model))
                r = summary(lat, err, wall)
                if proc is not None:
                    r["proxy_cpu_ms_per_request"] = 1000 * (cpu_seconds(proc.pid) - cpu0) / max(1, len(measured))
                r["startup_s"] = startup_s
                res["variants"][variant] = r
                print(f"{variant:>24}  p50 {r['p50_ms']:7.1f} ms  p90 {r['p90_ms']:7.1f} ms  mean {r['mean_ms']:7.1f} ms"
                      f"  errors {r['errors']}" + (f"  cpu {r['proxy_cpu_ms_per_request']:.1f} ms/req"
                                                   if proc else "")
                      + (f"  startup {startup_s:.1f} s" if startup_s else ""), flush=True)
                if err:
                    print("   e.g.", err[:2])
            finally:
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    v = res["variants"]

    def diff(a: str, b: str) -> float | None:
        return v[a]["p50_ms"] - v[b]["p50_ms"] if a in v and b in v else None

    res["added_p50_ms"] = {"pearl guardrail (litellm+pearl - litellm)": diff("litellm+pearl", "litellm"),
                           "litellm itself (litellm - direct)": diff("litellm", "direct"),
                           "pearl serve (pearl-serve - direct)": diff("pearl-serve", "direct"),
                           "pearl serve assess-only (- direct)": diff("pearl-serve-assess-only", "direct")}
    for k, x in res["added_p50_ms"].items():
        if x is not None:
            print(f"added p50: {k}: {x:.1f} ms")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
