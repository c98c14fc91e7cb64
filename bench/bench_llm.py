"""Model-layer benchmark: embedded tokens/s (free and JSON-constrained), concurrency against a
loopback server, and the cost of a cache hit.

    python bench/bench_llm.py [--requests 200] [--concurrency 32] [--latency 0.1] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from pearlpoint.llm import GenerationParams, Message, generate_structured, get_model
from pearlpoint.llm.mockserver import MockServer, MockServerProcess


class Summary(BaseModel):
    topic: str
    risk: str
    points: list[str]


PROMPTS = [
    "Explain how vaccines train the immune system.",
    "Give three tips for sleeping better after a night shift.",
    "What should a parent know about online grooming?",
    "Describe how a bicycle gear system works.",
]


async def bench_embedded(max_tokens: int) -> dict[str, float]:
    model = get_model("embedded", cache=False)
    await model.chat("warm up", params=GenerationParams(max_tokens=4))
    free_tokens = free_time = 0.0
    for p in PROMPTS:
        t = time.perf_counter()
        r = await model.chat([Message(role="user", content=p)], params=GenerationParams(max_tokens=max_tokens))
        free_time += time.perf_counter() - t
        free_tokens += r.usage.completion_tokens
    json_tokens = json_time = 0.0
    for p in PROMPTS:
        before = model.accounting.snapshot()["completion_tokens"]
        t = time.perf_counter()
        await generate_structured(model, f"Summarise the request: {p}", Summary,
                                  params=GenerationParams(max_tokens=max_tokens))
        json_time += time.perf_counter() - t
        json_tokens += model.accounting.snapshot()["completion_tokens"] - before
    return {"free_tokens_per_s": free_tokens / free_time, "json_tokens_per_s": json_tokens / json_time,
            "free_tokens": free_tokens, "json_tokens": json_tokens}


async def bench_concurrency(n: int, concurrency: int, latency: float) -> dict[str, float]:
    with MockServerProcess(delay_s=latency, reply="ok") as srv:
        model = get_model("openai", base_url=srv.base_url, model_name="mock", concurrency=concurrency, cache=False)
        await model.chat("warm up")
        t = time.perf_counter()
        await asyncio.gather(*(model.chat(f"request {i}") for i in range(n)))
        elapsed = time.perf_counter() - t
        await model.aclose()
    ideal = n / concurrency * latency
    return {"requests": n, "concurrency": concurrency, "latency_s": latency, "elapsed_s": elapsed,
            "ideal_s": ideal, "ratio_to_ideal": elapsed / ideal}


async def bench_cache(n: int = 200) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d, MockServer(delay_s=0.0, reply="cached answer") as srv:
        model = get_model("openai", base_url=srv.base_url, model_name="mock", cache_path=Path(d) / "c.sqlite")
        msgs = [Message(role="user", content="the same question")]
        await model.chat(msgs)
        times = []
        for _ in range(n):
            t = time.perf_counter()
            r = await model.chat(msgs)
            times.append(time.perf_counter() - t)
            assert r.cached
        await model.aclose()
    times.sort()
    return {"hits": n, "p50_ms": statistics.median(times) * 1e3, "p99_ms": times[int(0.99 * n) - 1] * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--skip-embedded", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    out: dict[str, object] = {"machine": f"{platform.machine()} {platform.processor() or ''} cores={__import__('os').cpu_count()}",
                              "date": time.strftime("%Y-%m-%d")}
    out["concurrency"] = asyncio.run(bench_concurrency(args.requests, args.concurrency, args.latency))
    out["cache"] = asyncio.run(bench_cache())
    if not args.skip_embedded:
        out["embedded"] = asyncio.run(bench_embedded(args.max_tokens))
    print(json.dumps(out, indent=2))
    c = out["concurrency"]
    print(f"\nconcurrency: {c['elapsed_s']:.3f} s vs ideal {c['ideal_s']:.3f} s -> {c['ratio_to_ideal']:.2f}x "
          f"(target < 1.5x) {'PASS' if c['ratio_to_ideal'] < 1.5 else 'FAIL'}")
    k = out["cache"]
    print(f"cache hit: p50 {k['p50_ms']:.2f} ms, p99 {k['p99_ms']:.2f} ms (target < 2 ms) "
          f"{'PASS' if k['p50_ms'] < 2 else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
