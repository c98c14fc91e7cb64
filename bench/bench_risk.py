"""Risk assessor benchmark: quality on held-out data, speed, and LLM-assessor validity.

    python bench/bench_risk.py --data-dir ../shared/data              # quality + speed (embedded)
    python bench/bench_risk.py --data-dir ../shared/data --llm 50     # + 50-prompt LLM validity run

Quality uses the training recipe's own deterministic split (same seed as the shipped weights), so the
"test" rows were never trained on; "public_test" is StrongREJECT (a whole public set never trained on),
"style_test" is the held-out look-alike file written in a different style, and "plain_test" is a second
held-out file written by another author (heldout_plain.txt). Variants are compared
side by side in one run: the shipped assessor, and the same heads without decoded views (ablation).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pearlpoint.risk.metrics import binary_report, rate  # noqa: E402
from pearlpoint.risk.recipe import load_own, load_shared, recipe_rows  # noqa: E402

FPR_KINDS = {"lookalike", "borderline", "benign_wrapped"}


# Data files added to the recipe on 2026-11-29 after the first weights; the bench reports the test rows
# they add apart from the rows the first recipe had, so old and new weights compare on common rows too.
NEW_FILES = ("everyday_short.txt", "plain_harmful.txt", "lookalikes_more.txt", "harmful_more.txt",
             "lookalikes_chatty.txt")


def _groups_of(names: tuple[str, ...]) -> set[str]:
    """Group ids of the rows in the named shipped prompt files (and so of their attack variants)."""
    from importlib import resources

    from pearlpoint.risk.recipe import parse_prompt_file

    root = resources.files("pearlpoint.risk").joinpath("data")
    return {r.group for n in names for r in parse_prompt_file(root.joinpath(n).read_text("utf-8"), n)}


def _assessor_from(path: str):
    from pearlpoint.risk.embedded import EmbeddedAssessor

    return EmbeddedAssessor(weights_dir=path)


def quality(assessor, rows, label: str) -> dict:
    t0 = time.perf_counter()
    memo = assessor.__dict__.setdefault("_bench_memo", {})  # subsets of a split reuse their assessments
    todo = list(dict.fromkeys(r.text for r in rows if r.text not in memo))
    memo.update(zip(todo, assessor.assess_batch(todo), strict=True))
    res = [memo[r.text] for r in rows]
    secs = time.perf_counter() - t0
    p = np.array([a.harmful_probability for a in res])
    thr = np.array([assessor.heads.threshold_for(a.language) for a in res])
    y = np.array([r.harmful for r in rows])
    out = {"variant": label, "rows": len(rows), "seconds": round(secs, 1)}
    out.update({k: v for k, v in binary_report(y, p - thr + 0.5, 0.5).items()})  # per-language thresholds
    out["ece"] = binary_report(y, p, 0.5)["ece"]
    harmful_flag = list(p >= thr)
    out["lookalike_fpr"] = rate([f for f, r in zip(harmful_flag, rows, strict=True) if r.kind in FPR_KINDS])
    out["everyday_fpr"] = rate([f for f, r in zip(harmful_flag, rows, strict=True) if r.kind == "everyday"])
    out["distress_detected"] = rate([a.user_types.vulnerable >= 0.5 for a, r in zip(res, rows, strict=True) if r.distress and not r.harmful])
    for lang in ("en", "zh"):
        idx = [i for i, r in enumerate(rows) if r.lang == lang]
        if idx:
            rep = binary_report(y[idx], (p - thr + 0.5)[idx], 0.5)
            out[f"f1_{lang}"] = rep["f1"]
            out[f"lookalike_fpr_{lang}"] = rate([harmful_flag[i] for i in idx if rows[i].kind in FPR_KINDS])
    for lvl in (1, 2, 3):
        flags = [f for f, r in zip(harmful_flag, rows, strict=True) if r.level == lvl]
        if flags:
            out[f"strata_L{lvl}_recall"] = rate(flags)
            out[f"strata_L{lvl}_n"] = len(flags)
    out["sweep"] = {}
    for t in (0.5, 0.7, 0.8, 0.9, 0.94):
        f = p >= t
        out["sweep"][t] = {"recall": rate([x for x, r in zip(f, rows, strict=True) if r.harmful]),
                           "lookalike_fpr": rate([x for x, r in zip(f, rows, strict=True) if r.kind in FPR_KINDS])}
    r2 = [a.level.value == "R2" for a, r in zip(res, rows, strict=True) if r.adversarial and r.harmful]
    out["adversarial_marked_R2"] = rate(r2)
    cat = [(a.category == r.category) for a, r in zip(res, rows, strict=True) if r.harmful and r.category and a.category != "none"]
    out["category_accuracy"] = rate(cat)
    return out


def speed(assessor, texts: list[str]) -> dict:
    assessor.assess_batch(texts[:32])  # warm-up
    counts = getattr(assessor, "fast_counts", None)
    before = dict(counts) if counts else None
    t0 = time.perf_counter()
    assessor.assess_batch(texts)
    batched = len(texts) / (time.perf_counter() - t0)
    lat = []
    for t in texts[:200]:
        s = time.perf_counter()
        assessor.assess(t)
        lat.append((time.perf_counter() - s) * 1000)
    lat.sort()
    return {"batched_prompts_per_s": round(batched, 1), "single_ms_median": round(statistics.median(lat), 2),
            "single_ms_p95": round(lat[int(0.95 * (len(lat) - 1))], 2), "n_batched": len(texts), "n_single": len(lat),
            # the share of texts (whole prompts and last segments) the fast path decided, when there is one
            **({"fast_path_share": round((counts["fast"] - before["fast"]) /
                                         max(1, sum(counts.values()) - sum(before.values())), 3)}
               if counts and getattr(assessor, "fast_heads", None) is not None else {})}


def llm_validity(n: int) -> dict:
    from pearlpoint.errors import PearlError
    from pearlpoint.llm import get_model
    from pearlpoint.risk.llm_assessor import LLMAssessor

    rows = load_own() + load_shared(Path(ARGS.data_dir))
    rng = np.random.default_rng(0)
    pick = [rows[i] for i in rng.choice(len(rows), size=min(n, len(rows)), replace=False)]
    llm = LLMAssessor(model=get_model("embedded"), max_tokens=128)
    valid, errors, t0 = 0, [], time.perf_counter()
    agree = []
    for r in pick:
        try:
            a = llm.assess(r.text)
            valid += 1
            agree.append(int((a.harmful_probability >= 0.5) == bool(r.harmful)))
        except PearlError as exc:
            errors.append(str(exc)[:120])
    return {"prompts": len(pick), "valid": valid, "valid_rate": valid / len(pick), "seconds": round(time.perf_counter() - t0, 1),
            "harm_agreement_with_labels": float(np.mean(agree)) if agree else None, "errors": errors[:5]}


def md_table(rows: list[dict], keys: list[str]) -> str:
    head = "| " + " | ".join(keys) + " |\n|" + "---|" * len(keys) + "\n"
    body = ""
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        body += "| " + " | ".join(cells) + " |\n"
    return head + body


def main() -> int:
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--llm", type=int, default=0, help="also run the LLM assessor (embedded model) on N prompts")
    ap.add_argument("--no-ablation", action="store_true")
    ap.add_argument("--only-llm", action="store_true", help="run only the LLM validity check (needs --llm N)")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--weights", action="append", default=[], metavar="NAME=DIR",
                    help="compare another weights folder side by side (repeatable), e.g. previous=/tmp/old")
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--only-speed", action="store_true", help="skip the quality part (re-measure speed alone)")
    ARGS = ap.parse_args()
    import torch

    from pearlpoint.risk import features as F
    from pearlpoint.risk import get_assessor

    if ARGS.only_llm:
        out = llm_validity(ARGS.llm or 50)
        print(json.dumps(out), flush=True)
        if ARGS.json_out:
            ARGS.json_out.write_text(json.dumps(out, indent=2) + "\n")
        return 0
    rows = recipe_rows(Path(ARGS.data_dir), ARGS.seed)
    splits = defaultdict(list)
    for r in rows:
        splits[r.split].append(r)
    a = get_assessor("embedded")
    variants = [("shipped", a)]
    for spec in ARGS.weights:
        name, _, path = spec.partition("=")
        variants.append((name, _assessor_from(path)))
    # Rows that a recipe change added (new data files) are reported apart, so weights trained on an older
    # recipe are compared on the rows both recipes share as well as on everything.
    new_groups = _groups_of(NEW_FILES)
    report: dict = {"machine": f"{platform.machine()} {torch.get_num_threads()} torch threads", "date": time.strftime("%Y-%m-%d"),
                    "threshold": a.heads.threshold, "thresholds": a.heads.card.get("thresholds", {}), "quality": [], "speed": {}}
    for split in (() if ARGS.only_speed else ("test", "public_test", "style_test", "plain_test")):
        subsets = [(split, splits[split])]
        fresh = [r for r in splits[split] if r.group in new_groups] if split == "test" else []
        if fresh:
            subsets.append(("test (previous recipe rows)", [r for r in splits[split] if r.group not in new_groups]))
            subsets.append(("test (new recipe rows)", fresh))
        for name, assessor in variants:
            for label, srows in subsets:
                q = quality(assessor, srows, name)
                q["split"] = label
                report["quality"].append(q)
                print(json.dumps(q), flush=True)
    if not (ARGS.no_ablation or ARGS.only_speed):
        original = F.decode_views
        import pearlpoint.risk.embedded as E

        E.F.decode_views = lambda text: F.DecodedViews()
        a.__dict__.pop("_bench_memo", None)
        F_extract = F.extract
        try:
            for split in ("test",):
                q = quality(a, splits[split], "no decoded views")
                q["split"] = split
                report["quality"].append(q)
                print(json.dumps(q), flush=True)
        finally:
            E.F.decode_views = original
            assert F.extract is F_extract
    mix = [r.text for r in splits["test"] if len(r.text) < 600][:512]
    # safe traffic: the test split's benign rows (look-alikes, everyday, distress: harder than real traffic)
    safe = [r.text for r in splits["test"] if not r.harmful and len(r.text) < 600][:512]
    if not ARGS.no_speed:
        for traffic, texts in (("", mix), ("_safe", safe)):
            for name, assessor in variants:  # side by side, in one process
                key = ("speed" if name == "shipped" else f"speed_{name}") + traffic
                report[key] = sp = speed(assessor, texts)
                print(json.dumps({"variant": name, "traffic": traffic.strip("_") or "test mix",
                                  "encoder_precision": assessor.heads.card.get("encoder_precision", "fp32"),
                                  **sp}), flush=True)
    if ARGS.llm:
        report["llm_validity"] = llm_validity(ARGS.llm)
        print(json.dumps(report["llm_validity"]), flush=True)
    keys = ["split", "variant", "rows", "precision", "recall", "f1", "fpr", "lookalike_fpr", "everyday_fpr", "ece",
            "category_accuracy", "distress_detected", "strata_L1_recall", "strata_L2_recall", "strata_L3_recall",
            "adversarial_marked_R2", "f1_en", "f1_zh", "lookalike_fpr_en", "lookalike_fpr_zh"]
    print("\n" + md_table(report["quality"], keys))
    if ARGS.json_out:
        ARGS.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
