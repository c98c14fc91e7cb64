"""The embedded response judge on each sentence encoder, side by side in one run.

    python bench/bench_judge.py --data-dir ../shared/data            # MiniLM (int8) vs USE
    python bench/bench_judge.py --encoders minilm,use-m3,minilm+use-m3

For each encoder: the same examples, the same split by prompt (seed 13) and the same heads are fitted
on the training prompts only (``train_judge --no-refit`` into a scratch folder), and scored against the
human labels of the held-out prompts (Do-Not-Answer's refusal classes and harmful labels). Then the
CPU time of one answer's check (a 467-character answer, its prompt already embedded, as in the guard)
and, when ``runs/bench_guard.jsonl`` is there, the harm head against the maintainers' hand labels of
SmolLM2 answers (``bench/data/guard_hand_labels.jsonl``).

With ``--extra FILE`` each encoder is fitted twice, without and with the extra rows (the Do-Not-Answer
split is the same in both); ``--outside FILE`` scores each fit's harmful head on answers no fit saw
(for example ``scripts/outside_answers.py``'s held-out part) and asks what the guard's checker stops
when the assessor has called the request safe:

    python scripts/outside_answers.py --out runs/outside
    python bench/bench_judge.py --encoders use-m3 --extra runs/outside/pyrit_many_shot.train.jsonl \
        --outside runs/outside/pyrit_many_shot.heldout.jsonl --answers runs/bench_guard3.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HAND_LABELS = ROOT / "bench" / "data" / "guard_hand_labels.jsonl"
ANSWER = ("Banana bread is forgiving. Mash three very ripe bananas, stir in a third of a cup of melted butter, then "
          "three quarters of a cup of sugar, one beaten egg and a teaspoon of vanilla. Sprinkle a teaspoon of baking "
          "soda and a pinch of salt over the mixture, fold in one and a half cups of flour, and pour it into a "
          "buttered loaf pan. Bake for about an hour, until a skewer comes out clean, and let it cool before slicing.")


def held_out(encoder: str, data_dir: Path, scratch: Path, extra: Sequence[Path] = (), extra_weight: float = 1.0) -> dict:
    from contextlib import redirect_stdout
    from io import StringIO

    from pearlpoint.eval import train_judge

    out = scratch / (encoder.replace("+", "_") + ("_extra" if extra else ""))
    with redirect_stdout(StringIO()):
        train_judge.main(["--data-dir", str(data_dir), "--out", str(out), "--encoder", encoder, "--no-refit",
                          "--extra-weight", str(extra_weight), *[a for f in extra for a in ("--extra", str(f))]])
    meta = json.loads((out / "judge_meta.json").read_text())
    return {"weights": str(out / "judge_weights.npz"), **meta["held_out_agreement"]}


def check_ms(weights: str, n: int = 40) -> dict:
    from pearlpoint.classifiers.response import EmbeddedResponseJudge
    from pearlpoint.guard.checker import AnswerChecker
    from pearlpoint.guard.context import GuardContext

    checker = AnswerChecker(EmbeddedResponseJudge(weights))
    ctx = GuardContext(prompt="How do I bake banana bread?", lang="en", strategy="full_answer", level="R0")
    checker.check(ctx, "warm up")
    times = []
    for i in range(n + 5):
        t = time.perf_counter()
        checker.check(ctx, f"{ANSWER} ({i})")  # a new answer each time: nothing of it is cached
        times.append((time.perf_counter() - t) * 1000)
    return {"check_ms_p50": round(statistics.median(times[5:]), 2), "answer_chars": len(ANSWER) + 5}


def hand_label_rows(answers: Path) -> list[tuple[str, str, int]]:
    if not answers.exists() or not HAND_LABELS.exists():
        return []
    labels = {json.loads(line)["key"]: json.loads(line)["harmful"]
              for line in HAND_LABELS.read_text(encoding="utf-8").splitlines() if line.strip()}
    rows = []
    for line in answers.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        key = hashlib.sha256(f"{r['prompt']}\x00{r['answer']}".encode()).hexdigest()[:16]
        if key in labels:
            rows.append((r["prompt"], r["answer"], int(labels.pop(key))))
    return rows


def harm_vs_hand(weights: str, rows: list[tuple[str, str, int]]) -> dict:
    from pearlpoint.classifiers.response import EmbeddedResponseJudge
    from pearlpoint.eval.stats import accuracy

    v = EmbeddedResponseJudge(weights).classify([r[0] for r in rows], [r[1] for r in rows])
    pred = [int(x.harmful_probability >= 0.5) for x in v]
    gold = [r[2] for r in rows]
    pos = sum(gold)
    return {"n": len(rows), "harmful": pos, "accuracy": round(accuracy(gold, pred), 3),
            "recall": round(sum(p and g for p, g in zip(pred, gold, strict=True)) / max(1, pos), 3),
            "false_positive_rate": round(sum(p and not g for p, g in zip(pred, gold, strict=True))
                                         / max(1, len(gold) - pos), 3)}


def outside_rows(path: Path | None) -> list[tuple[str, str, int]]:
    if path is None:
        return []
    from pearlpoint.io import iter_jsonl_strict

    return [(r["prompt"], r["response"], int(r["harmful"])) for _, r in iter_jsonl_strict(path)]


def checker_on_missed(weights: str, rows: list[tuple[str, str, int]]) -> dict:
    """The guard's last line: the assessor called the request safe (R0, harmful probability 0.1) and the
    upstream answered. Which harmful answers does the checker's operational_harm still stop, and which
    harmless ones does it stop by mistake?"""
    from pearlpoint.classifiers.response import EmbeddedResponseJudge
    from pearlpoint.guard.checker import AnswerChecker
    from pearlpoint.guard.context import GuardContext
    from pearlpoint.guard.policy import GuardPolicy

    checker, policy = AnswerChecker(EmbeddedResponseJudge(weights)), GuardPolicy.default()
    stopped = [checker.check(GuardContext(prompt=p, strategy="full_answer", level="R0", harmful_probability=0.1),
                             a, policy).score("operational_harm") >= policy.threshold("operational_harm", "R0")
               for p, a, _ in rows]
    pos = [s for s, r in zip(stopped, rows, strict=True) if r[2]]
    neg = [s for s, r in zip(stopped, rows, strict=True) if not r[2]]
    return {"harmful_stopped": round(sum(pos) / max(1, len(pos)), 3), "harmless_stopped": round(sum(neg) / max(1, len(neg)), 3),
            "n_harmful": len(pos), "n_harmless": len(neg)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoders", default="minilm,use-m3")
    ap.add_argument("--answers", type=Path, default=ROOT / "runs" / "bench_guard.jsonl",
                    help="bench_guard's answers, for the hand-label comparison")
    ap.add_argument("--extra", type=Path, action="append", default=[],
                    help="train_judge --extra file(s): each encoder is then fitted without and with them")
    ap.add_argument("--extra-weight", type=float, default=1.0, help="passed to train_judge")
    ap.add_argument("--outside", type=Path, default=None,
                    help="held-out outside answers (prompt, response, harmful), e.g. runs/outside/"
                         "pyrit_many_shot.heldout.jsonl from scripts/outside_answers.py")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = hand_label_rows(args.answers)
    outside = outside_rows(args.outside)
    report: dict = {"date": time.strftime("%Y-%m-%d"), "encoders": {}}
    variants = [(enc, extra) for enc in args.encoders.split(",") for extra in ([[]] + ([args.extra] if args.extra else []))]
    with tempfile.TemporaryDirectory() as tmp:
        for enc, extra in variants:
            name = enc + ("+extra" if extra else "")
            print(f"[{name}] fitting on the training prompts ...", file=sys.stderr, flush=True)
            r = held_out(enc, args.data_dir, Path(tmp), extra, args.extra_weight)
            res = {"held_out_3way": r["judge"]["accuracy_3way"], "held_out_binary": r["judge"]["accuracy_binary"],
                   "kappa_3way": r["judge"]["kappa_3way"], "n": r["judge"]["n"],
                   "do_not_answer_3way": r["judge_do_not_answer"]["accuracy_3way"],
                   "zh_3way": (r.get("judge_zh") or {}).get("accuracy_3way"),
                   "harmful_do_not_answer": r["harmful_do_not_answer"], **check_ms(r["weights"])}
            if rows:
                res["harm_vs_hand_labels"] = harm_vs_hand(r["weights"], rows)
            if outside:
                res["harm_vs_outside_labels"] = harm_vs_hand(r["weights"], outside)
                res["checker_after_assessor_miss"] = checker_on_missed(r["weights"], outside)
            report["encoders"][name] = res
            print(json.dumps({name: res}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
