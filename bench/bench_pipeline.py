"""Batch pipeline benchmark: throughput against a 200 ms upstream, and memory as the input grows.

Variants, side by side in one run (the upstream is a real OpenAI-compatible server in a child
process, answering after a fixed latency):

- ``model-only``: the same K calls per row from 32 plain coroutines, no pipeline: what the model
  layer and the machine allow, so the pipeline's own overhead is the gap to ``calls``;
- ``calls``: the batch loop with a responder that makes K sequential model calls per row (the
  pipeline and model layer only: bounded queue, workers, fsync'd writes, HTTP client, accounting);
- ``csa``: the full loop, :func:`pearlpoint.lingo.respond_async` per row (assess -> solve -> chain
  -> forward -> judges -> backward ...), against an upstream that answers every structured call
  with valid CSA JSON (``scripted_csa_reply``);
- ``reference``: the reference implementation's pattern, a thread pool whose submit loop launches
  at most 2 tasks per second (each task makes the same K calls), i.e. a ceiling of 2 rows/s.

The ideal rate is ``concurrency / (calls_per_row * latency)``: with C calls in flight, each taking
the latency, no scheduler can do better. Memory: peak RSS of a fresh process that runs the batch
loop over 1k and 10k rows (input streamed, records written), with the upstream out of process.

    python bench/bench_pipeline.py [--rows 200] [--concurrency 32] [--latency 0.2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pearlpoint.llm.mockserver import MockServerProcess
from pearlpoint.pipeline.generate import GenerateConfig, generate_async
from pearlpoint.pipeline.loadtest import CallsResponder, scripted_csa_reply

PROMPTS = ["How do I keep a sourdough starter alive?", "What should I check before buying a used car?",
           "How can I tell if my teenager is being bullied online?", "Explain how a heat pump works."]


def write_input(path: Path, rows: int, pad: int = 0) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(rows):
            fh.write(json.dumps({"id": f"row-{i}", "prompt": f"{PROMPTS[i % len(PROMPTS)]} (case {i})" + " ." * pad})
                     + "\n")
    return path


def openai_model(base_url: str, concurrency: int):
    from pearlpoint.llm import get_model

    return get_model("openai", base_url=base_url, model_name="mock", concurrency=concurrency, cache=False,
                     max_retries=0, timeout_s=60)


async def run_calls(base_url: str, rows: int, concurrency: int, calls: int, work: Path) -> dict:
    src = write_input(work / "calls.jsonl", rows)
    model = openai_model(base_url, concurrency)
    cfg = GenerateConfig(input=str(src), out=work / "calls-run", concurrency=concurrency)
    t = time.perf_counter()
    report, run_json = await generate_async(cfg, responder=CallsResponder(model, calls_per_row=calls))
    wall = time.perf_counter() - t
    await model.aclose()
    return {"rows": report.succeeded, "failed": report.failed, "wall_s": wall, "calls": run_json["usage"]["calls"]}


async def run_model_only(base_url: str, rows: int, concurrency: int, calls: int) -> dict:
    """The same calls with no pipeline at all (32 coroutines looping over rows): the model layer's
    and this machine's own ceiling, to separate the pipeline's overhead from theirs."""
    from pearlpoint.llm import GenerationParams, Message

    model = openai_model(base_url, concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(rows):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            for step in range(calls):
                await model.chat([Message(role="user", content=f"[{step}] {PROMPTS[i % 4]}")],
                                 params=GenerationParams(max_tokens=16, temperature=0.7))

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t
    await model.aclose()
    return {"rows": rows, "failed": 0, "wall_s": wall, "calls": rows * calls}


async def run_csa(base_url: str, rows: int, concurrency: int, steps: int, work: Path) -> dict:
    src = write_input(work / "csa.jsonl", rows)
    cfg = GenerateConfig(input=str(src), out=work / "csa-run", concurrency=concurrency, steps=steps,
                         settings_overrides={"model": "openai", "base_url": base_url, "model_name": "mock",
                                             "cache": False, "max_retries": 0})
    # warm up imports and the assessor outside the timed window (a long run pays this once)
    warm = GenerateConfig(**{**cfg.__dict__, "input": str(write_input(work / "warm.jsonl", 2)),
                             "out": work / "warm-run"})
    await generate_async(warm)
    t = time.perf_counter()
    report, run_json = await generate_async(cfg)
    wall = time.perf_counter() - t
    return {"rows": report.succeeded, "failed": report.failed, "wall_s": wall, "calls": run_json["usage"]["calls"]}


def run_reference(base_url: str, rows: int, concurrency: int, calls: int) -> dict:
    """Thread pool + a submit loop that launches at most 2 tasks per second."""
    import httpx

    client = httpx.Client(timeout=60)

    def task(i: int) -> None:
        for step in range(calls):
            client.post(f"{base_url}/chat/completions", json={
                "model": "mock", "messages": [{"role": "user", "content": f"[{step}] {PROMPTS[i % 4]}"}]})

    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = []
        for i in range(rows):
            futures.append(pool.submit(task, i))
            time.sleep(0.5)  # the reference's launch pacing: 2 tasks/s
        for f in futures:
            f.result()
    client.close()
    return {"rows": rows, "failed": 0, "wall_s": time.perf_counter() - t, "calls": rows * calls}


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(rows: int, base_url: str, work: str) -> None:
    """Runs in a fresh process: the batch loop over ``rows`` rows; prints RSS before and at peak."""
    work_dir = Path(work)
    src = write_input(work_dir / f"mem-{rows}.jsonl", rows, pad=1000)  # ~2 KB per row
    model = openai_model(base_url, 64)
    cfg = GenerateConfig(input=str(src), out=work_dir / f"mem-{rows}-run", concurrency=64)
    # warm up: imports, HTTP client, event loop machinery (paid once, whatever the input size)
    asyncio.run(generate_async(GenerateConfig(**{**cfg.__dict__, "input": str(write_input(
        work_dir / f"mem-warm-{rows}.jsonl", 64)), "out": work_dir / f"mem-warm-{rows}-run"}),
        responder=CallsResponder(model, calls_per_row=1)))
    baseline = rss_mib()
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t = time.perf_counter()
    report, _ = asyncio.run(generate_async(cfg, responder=CallsResponder(model, calls_per_row=1)))
    wall = time.perf_counter() - t
    done.set()
    sampler.join()
    print(json.dumps({"rows": report.succeeded, "baseline_mib": round(baseline, 1), "peak_mib": round(peak[0], 1),
                      "growth_mib": round(peak[0] - baseline, 1), "wall_s": round(wall, 1),
                      "input_mib": round(src.stat().st_size / 2**20, 2)}))


def measure_memory(base_url: str, sizes: list[int], work: Path) -> list[dict]:
    out = []
    for n in sizes:
        proc = subprocess.run([sys.executable, __file__, "--memory-child", str(n), "--base-url", base_url,
                               "--work", str(work)], capture_output=True, text=True, check=True)
        out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--calls", type=int, default=4, help="calls per row for the 'calls' variant")
    ap.add_argument("--steps", type=int, default=2, help="Lingo-BP rounds for the 'csa' variant")
    ap.add_argument("--reference-rows", type=int, default=20, help="rows for the (slow) reference variant")
    ap.add_argument("--memory-sizes", default="1000,10000")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.base_url, args.work)
        return

    results: dict = {"machine": f"{platform.machine()}, {platform.python_version()}",
                     "rows": args.rows, "concurrency": args.concurrency, "latency_s": args.latency}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with MockServerProcess(delay_s=args.latency, reply="A short, friendly answer.") as plain:
            bare = asyncio.run(run_model_only(plain.base_url, args.rows, args.concurrency, args.calls))
            calls = asyncio.run(run_calls(plain.base_url, args.rows, args.concurrency, args.calls, work))
            ref = run_reference(plain.base_url, args.reference_rows, args.concurrency, args.calls)
        with MockServerProcess(delay_s=args.latency, reply=scripted_csa_reply([])) as csa_srv:
            csa = asyncio.run(run_csa(csa_srv.base_url, args.rows, args.concurrency, args.steps, work))
        with MockServerProcess(delay_s=0.0, reply="ok") as fast:
            memory = measure_memory(fast.base_url, [int(x) for x in args.memory_sizes.split(",")], work)

    table = []
    for name, r in (("model-only", bare), ("calls", calls), ("csa", csa), ("reference", ref)):
        per_row = r["calls"] / max(1, r["rows"])
        ideal = args.concurrency / (per_row * args.latency)
        rate = r["rows"] / r["wall_s"]
        if name == "reference":
            ideal_note = min(ideal, 2.0)
        else:
            ideal_note = ideal
        table.append({"variant": name, "rows": r["rows"], "failed": r["failed"], "calls_per_row": round(per_row, 2),
                      "wall_s": round(r["wall_s"], 2), "rows_per_s": round(rate, 2),
                      "ideal_rows_per_s": round(ideal, 2), "pct_of_ideal": round(100 * rate / ideal, 1),
                      "ceiling_rows_per_s": round(ideal_note, 2)})
    results["variants"] = table
    results["memory"] = memory
    print(f"{'variant':10} {'rows':>5} {'calls/row':>9} {'wall s':>8} {'rows/s':>8} {'ideal':>8} {'% ideal':>8}")
    for t in table:
        print(f"{t['variant']:10} {t['rows']:>5} {t['calls_per_row']:>9} {t['wall_s']:>8} {t['rows_per_s']:>8} "
              f"{t['ideal_rows_per_s']:>8} {t['pct_of_ideal']:>8}")
    for m in memory:
        print(f"memory: {m['rows']:>6} rows ({m['input_mib']} MiB input): RSS {m['baseline_mib']} MiB before, "
              f"peak {m['peak_mib']} MiB during the run (+{m['growth_mib']} MiB), {m['wall_s']} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
