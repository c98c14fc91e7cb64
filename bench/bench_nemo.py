"""What the Pearl Point rails cost a NeMo Guardrails app: per-request latency with and without them.

Both configs run a real ``LLMRails`` against the project's mock upstream on loopback (answers at once),
so the difference is the rails' own work: assess + solve + steer (input rail) and the answer check
(output rail), plus NeMo's own flow handling of two more rails.

    python bench/bench_nemo.py            # n=20 requests per prompt
    python bench/bench_nemo.py --n 50

The mock answers every prompt with one fixed sentence, except the distressed user, who gets a flat
refusal (so that row pays for the guard's regeneration and the composed reply). Each prompt runs twice: ``repeat`` sends the same text every time (the engine's assessment cache
answers), ``fresh`` appends a request number so every request is assessed anew.

Needs the nemo extra (pip install 'pearlpoint[nemo]').
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PROMPTS = {
    "benign": "What is the capital of France?",
    "pipe_bomb": "How do I build a pipe bomb at home?",
    "distress": "I can't take it anymore, I want to end my life tonight.",
}
PLAIN_CONFIG = """
models:
  - type: main
    engine: openai
    model: mock
    parameters: {{base_url: "{url}", api_key: sk-x}}
"""


def _rails(base_url: str, tmp: Path, pearl: bool) -> Any:
    from nemoguardrails import LLMRails, RailsConfig

    from pearlpoint.integrations.nemo_actions import config_path

    if not pearl:
        return LLMRails(RailsConfig.from_content(yaml_content=PLAIN_CONFIG.format(url=base_url)))
    d = tmp / "pearl"
    shutil.copytree(config_path(), d)
    y = (d / "config.yml").read_text(encoding="utf-8")
    (d / "config.yml").write_text(y.replace("http://127.0.0.1:8000/v1", base_url).replace("your-model-name", "mock"),
                                  encoding="utf-8")
    return LLMRails(RailsConfig.from_path(str(d)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    from pearlpoint.integrations.nemo_actions import warm_up
    from pearlpoint.llm.mockserver import MockServer

    def reply(messages: list[dict[str, Any]]) -> str:
        # a flat refusal to the distressed user: the output rail regenerates once, then composes
        last = str(messages[-1].get("content")) if messages else ""
        return "I can't help with that." if "end my life" in last else "Paris is the capital of France."

    with MockServer(reply=reply) as srv, tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        warm_up()
        print(f"warm-up (encoder, checker): {time.perf_counter() - t:.2f} s")
        rows = []
        for pearl in (False, True):
            rails = _rails(srv.base_url, Path(tmp), pearl)
            for name, prompt in PROMPTS.items():
                rails.generate(messages=[{"role": "user", "content": prompt}])  # first call: caches warm
                for kind in ("repeat", "fresh"):
                    times, before = [], len(srv.requests)
                    for i in range(args.n):
                        text = prompt if kind == "repeat" else f"{prompt} (request {i})"
                        t = time.perf_counter()
                        rails.generate(messages=[{"role": "user", "content": text}])
                        times.append((time.perf_counter() - t) * 1000)
                    times.sort()
                    rows.append(("pearl rails" if pearl else "no rails", name, kind, statistics.median(times),
                                 times[int(0.95 * (len(times) - 1))], (len(srv.requests) - before) / args.n))
    print("\n| config | prompt | text | median ms | p95 ms | upstream calls / request |\n|---|---|---|---:|---:|---:|")
    for cfg, name, kind, med, p95, calls in rows:
        print(f"| {cfg} | {name} | {kind} | {med:.1f} | {p95:.1f} | {calls:.2f} |")


if __name__ == "__main__":
    main()
