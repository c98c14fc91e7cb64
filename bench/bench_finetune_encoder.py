"""Frozen vs fine-tuned MiniLM for prompt harm, side by side in one run (an issue 14 experiment).

frozen:     the shipped assessor (frozen all-MiniLM-L6-v2 vectors + trained heads + features), at its
            shipped per-language thresholds;
fine-tuned: the same encoder trained end to end (pearlpoint.risk.finetune: harm, distress, category) on the
            same training split and augmentations the heads were trained on, its threshold picked on
            the calibration split with the same rule (best F1 with look-alike FPR <= 5%).

Both are scored on the splits no model trained on: the test split, StrongREJECT (public_test, other
authors), heldout_plain (plain_test) and heldout_style (style_test, chatty look-alikes).

    python bench/bench_finetune_encoder.py --data-dir ../shared/data --epochs 2 --json-out runs/finetune.json

Deterministic with --seed on one machine (torch CPU kernels). Nothing here ships: it measures
whether end-to-end fine-tuning is worth building into the product.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

EVAL_SPLITS = ("test", "public_test", "plain_test", "style_test")


def report(rows: list[Any], p: np.ndarray, thr: np.ndarray) -> dict[str, float]:
    from pearlpoint.risk.metrics import binary_report, rate
    from pearlpoint.risk.train import FPR_KINDS

    y = np.array([r.harmful for r in rows])
    out = {k: round(v, 4) for k, v in binary_report(y, p - thr + 0.5, 0.5).items()}
    flag = p >= thr
    out["lookalike_fpr"] = round(rate([f for f, r in zip(flag, rows, strict=True) if r.kind in FPR_KINDS]), 4)
    for lang in ("en", "zh"):
        h = [f for f, r in zip(flag, rows, strict=True) if r.harmful and r.lang == lang]
        if h:
            out[f"recall_{lang}"] = round(rate(h), 4)
    return out


def frozen_scores(rows: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    from pearlpoint.risk.embedded import EmbeddedAssessor

    a = EmbeddedAssessor()
    res = a.assess_batch([r.text for r in rows])
    return (np.array([x.harmful_probability for x in res]),
            np.array([a.heads.threshold_for(x.language) for x in res]))


def fine_tune(train: list[Any], *, epochs: int, batch: int, lr: float, max_len: int, seed: int) -> tuple[Any, dict]:
    """The package's multi-task fine-tune (pearlpoint.risk.finetune); this bench reads its harm output."""
    from pearlpoint.risk.finetune import fine_tune as package_fine_tune
    from pearlpoint.risk.heads import RiskHeads

    return package_fine_tune(train, RiskHeads.load(None).category_ids, epochs=epochs, batch=batch, lr=lr,
                             max_len=max_len, seed=seed)


def harm_probability(model: Any, texts: list[str]) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-model.predict(texts)[:, 0]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=13, help="training seed")
    ap.add_argument("--split-seed", type=int, default=13, help="the shipped heads' split seed: keep it, or the "
                                                                 "frozen variant is scored on rows it trained on")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    import torch

    from pearlpoint.risk.finetune import load_split_rows
    from pearlpoint.risk.train import choose_threshold

    torch.set_num_threads(2)
    splits = load_split_rows(args.data_dir, args.split_seed)
    print({s: len(v) for s, v in splits.items()}, flush=True)
    model, train_info = fine_tune(splits["train"], epochs=args.epochs, batch=args.batch, lr=args.lr,
                                  max_len=args.max_len, seed=args.seed)
    cal = splits["calib"]
    p_cal = harm_probability(model, [r.text for r in cal])
    thr = choose_threshold(np.array([r.harmful for r in cal]), p_cal,
                           np.array([r.kind in {"lookalike", "borderline", "benign_wrapped"} for r in cal]))
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}",
                              "fine_tune": {**train_info, "threshold": thr}, "splits": {}}
    for s in EVAL_SPLITS:
        rows = splits[s]
        if not rows:
            continue
        t = time.perf_counter()
        p_ft = harm_probability(model, [r.text for r in rows])
        ft_s = time.perf_counter() - t
        p_fr, thr_fr = frozen_scores(rows)
        result["splits"][s] = {"rows": len(rows), "frozen": report(rows, p_fr, thr_fr),
                               "fine_tuned": {**report(rows, p_ft, np.full(len(rows), thr)),
                                              "prompts_per_s_torch": round(len(rows) / ft_s, 1)}}
        print(s, json.dumps(result["splits"][s]), flush=True)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
