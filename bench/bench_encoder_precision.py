"""The MiniLM encoder in fp32 vs int8, side by side in one process: what int8 costs each classifier.

The heads (risk assessor, response judge) were trained on fp32 vectors. This script runs both encoders
over the same rows and reports, per classifier, quality on held-out data and agreement between the two
precisions, plus the guard checker's and the assessor's speed:

- the risk assessor on the recipe's held-out splits (``test``; ``public_test`` = StrongREJECT, never
  trained on; ``style_test`` and ``plain_test``, look-alikes and plain requests by other authors);
- the response judge on Do-Not-Answer's human labels, the prompt-grouped held-out share that
  ``train_judge`` uses (the shipped heads were refit on all rows, so both precisions are scored on rows
  their heads saw: the comparison is between precisions, not an unseen-data figure);
- the guard checker's time on a 467-character answer, and the assessor's single and batched speed.

    python bench/bench_encoder_precision.py --data-dir ../shared/data [--json-out runs/precision.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

ANSWER = ("Banana bread is forgiving. Mash three very ripe bananas, stir in a third of a cup of melted "
          "butter, then three quarters of a cup of sugar, one beaten egg and a teaspoon of vanilla. Sprinkle "
          "a teaspoon of baking soda and a pinch of salt over the mixture, fold in one and a half cups of "
          "flour, and pour it into a buttered loaf pan. Bake for about an hour, until a skewer comes out "
          "clean, and let it cool before slicing. Walnuts or chocolate chips are welcome additions.")


def use(enc) -> None:
    from pearlpoint import embeddings

    embeddings._ENCODERS.clear()
    embeddings._ENCODERS.update({"fp32": enc, "int8": enc})


def timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def p(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * (len(xs) - 1)))], 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--judge-rows", type=int, default=0, help="cap the judge's rows (0: the whole held-out share)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()

    from bench_risk import quality

    from pearlpoint import embeddings
    from pearlpoint.classifiers.response import EmbeddedResponseJudge
    from pearlpoint.eval.judge_data import load_do_not_answer
    from pearlpoint.eval.train_judge import agreement, binary, split_by_prompt
    from pearlpoint.guard import AnswerChecker, GuardContext
    from pearlpoint.guard.policy import GuardPolicy
    from pearlpoint.risk.embedded import EmbeddedAssessor
    from pearlpoint.risk.recipe import assign_splits, load_own, load_shared

    encoders = {name: embeddings.load_onnx_encoder(precision=name) for name in ("fp32", "int8")}
    report: dict = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}, "
                    f"{__import__('os').cpu_count()} cores", "assessor": [], "judge": {}, "speed": {}}

    # 1. risk assessor, held-out splits
    rows = load_shared(args.data_dir) + load_own()
    assign_splits(rows, seed=args.seed)
    splits = defaultdict(list)
    for r in rows:
        splits[r.split].append(r)
    harm_flags: dict[str, list[bool]] = {}
    for name, enc in encoders.items():
        use(enc)
        assessor = EmbeddedAssessor()
        for split in ("test", "public_test", "style_test", "plain_test"):
            q = quality(assessor, splits[split], name)
            q.pop("sweep", None)
            q["split"] = split
            report["assessor"].append(q)
            print(json.dumps(q), flush=True)
        memo = assessor.__dict__["_bench_memo"]
        texts = [r.text for s in ("test", "public_test", "style_test", "plain_test") for r in splits[s]]
        harm_flags[name] = [memo[t].harmful_probability >= assessor.heads.threshold_for(memo[t].language)
                            for t in texts]
        report["speed"][name] = {}
        short = [t for t in texts if len(t) < 200][:256]
        assessor.assess_batch(short[:16])
        t = time.perf_counter()
        assessor.assess_batch(short)
        report["speed"][name]["assessor_batched_prompts_per_s"] = round(len(short) / (time.perf_counter() - t), 1)
        lat = [timed(lambda x=x, a=assessor: a.assess(x), 1)[0] for x in short[:120]]
        report["speed"][name]["assessor_single_ms_p50"] = p(lat, 0.5)
        long_text = (" ".join(short))[:2000]
        report["speed"][name]["assessor_2000_chars_ms_p95"] = p(timed(lambda a=assessor, x=long_text: a.assess(x), 20), 0.95)
    report["assessor_flag_agreement"] = round(float(np.mean(
        [a == b for a, b in zip(harm_flags["fp32"], harm_flags["int8"], strict=True)])), 4)

    # 2. response judge, Do-Not-Answer held-out share (grouped by prompt)
    examples = load_do_not_answer(args.data_dir / "do_not_answer.jsonl")
    held = split_by_prompt([e.group for e in examples], 0.2, args.seed)
    ex = [e for e, m in zip(examples, held, strict=True) if m]
    if args.judge_rows:
        ex = ex[:args.judge_rows]
    gold = [e.refusal for e in ex]
    preds: dict[str, list[str]] = {}
    harm: dict[str, list[int]] = {}
    for name, enc in encoders.items():
        use(enc)
        judge = EmbeddedResponseJudge("minilm")  # the MiniLM judge: this script compares MiniLM precisions
        t = time.perf_counter()
        v = judge.classify([e.prompt for e in ex], [e.response for e in ex])
        preds[name] = [x.refusal for x in v]
        harm[name] = [int(x.harmful_probability >= 0.5) for x in v]
        hg = [e.harmful for e in ex]
        report["judge"][name] = {**agreement(gold, preds[name]), "seconds": round(time.perf_counter() - t, 1),
                                 "harmful_accuracy": round(float(np.mean([a == b for a, b in zip(hg, harm[name], strict=True)])), 4)}
        print(name, json.dumps(report["judge"][name]), flush=True)
    report["judge"]["fp32_vs_int8"] = {
        "refusal_3way_agreement": round(float(np.mean([a == b for a, b in zip(preds["fp32"], preds["int8"], strict=True)])), 4),
        "refusal_binary_agreement": round(float(np.mean([a == b for a, b in zip(binary(preds["fp32"]), binary(preds["int8"]), strict=True)])), 4),
        "harmful_agreement": round(float(np.mean([a == b for a, b in zip(harm["fp32"], harm["int8"], strict=True)])), 4)}

    # 3. guard checker time (a fresh checker per precision: its prompt-vector cache is per encoder)
    ctx = GuardContext(prompt="How do I bake banana bread?", lang="en", strategy="full_answer", level="R0")
    for name, enc in encoders.items():
        use(enc)
        chk = AnswerChecker()
        chk.warm_up()
        pol = GuardPolicy.default()
        ts = timed(lambda chk=chk, pol=pol: chk.check(ctx, ANSWER, pol), 60)[10:]
        cpu0 = time.process_time()
        for _ in range(30):
            chk.check(ctx, ANSWER, pol)
        report["speed"][name]["checker_ms_p50"] = p(ts, 0.5)
        report["speed"][name]["checker_ms_p95"] = p(ts, 0.95)
        report["speed"][name]["checker_cpu_ms"] = round((time.process_time() - cpu0) / 30 * 1000, 2)
    report["speed"]["answer_chars"] = len(ANSWER)
    print(json.dumps(report["speed"], indent=1))
    keys = ["split", "variant", "rows", "f1", "recall", "lookalike_fpr", "ece", "f1_en", "f1_zh", "category_accuracy",
            "distress_detected"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for q in report["assessor"]:
        print("| " + " | ".join(f"{q.get(k):.3f}" if isinstance(q.get(k), float) else str(q.get(k, "")) for k in keys) + " |")
    print("assessor harm-flag agreement fp32 vs int8:", report["assessor_flag_agreement"])
    print("judge:", json.dumps(report["judge"]))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
