"""Fine-tune all-MiniLM-L6-v2 end to end for prompt risk (issue 14), on CPU, from a documented command.

One shared encoder, mean pooling, one linear layer with three task outputs: harm (binary), distress
(binary) and category (softmax over the frozen heads' categories, learnt on harmful rows only). Trained
on the same train split and augmentations as the frozen heads (``pearlpoint.risk.train``, same seed), so
the calibration, test and held-out splits stay unseen by both.

    python -m pearlpoint.risk.finetune --data-dir ../shared/data --out runs/ft

writes ``model.pt`` (the torch state, for re-export), ``train.json`` (rows, losses, seconds) and the
run-time folder ``finetuned/`` (``encoder.int8.onnx``, ``head.npz``, ``finetuned.json``: see
finetuned.py). ``--export-only`` rebuilds that folder from a ``model.pt``. The frozen heads then learn
how much to trust it: ``python -m pearlpoint.risk.train --recalibrate --finetuned DIR/finetuned``.
Seeded (``--seed``: torch, shuffling) and run on two threads; a rerun has not yet been compared bit for bit.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

TASK_OUTPUTS = ("harm", "distress")  # then one output per category


def load_split_rows(data_dir: Path, seed: int) -> dict[str, list[Any]]:
    """The frozen heads' rows and splits (the same recipe and seed as ``pearlpoint.risk.train``)."""
    from pearlpoint.risk.recipe import HELD_OUT_SPLITS, recipe_rows

    rows = recipe_rows(data_dir, seed)
    return {s: [r for r in rows if r.split == s] for s in ("train", "calib", "test", *HELD_OUT_SPLITS)}


class RiskEncoderModel:
    """MiniLM + mean pooling + one linear layer: [harm, distress, category...] logits."""

    def __init__(self, categories: list[str], max_len: int = 128) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from pearlpoint.embeddings import _quiet_transformers, find_minilm_dir

        _quiet_transformers()
        d = str(find_minilm_dir())
        self.tok = AutoTokenizer.from_pretrained(d)
        self.enc = AutoModel.from_pretrained(d)
        self.categories = list(categories)
        self.head = torch.nn.Linear(self.enc.config.hidden_size, len(TASK_OUTPUTS) + len(self.categories))
        self.max_len = max_len

    def forward_ids(self, input_ids: Any, attention_mask: Any) -> Any:
        import torch

        h = self.enc(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1e-6)
        return self.head(torch.nn.functional.normalize(pooled, dim=-1) * 10.0)

    def logits(self, texts: list[str]) -> Any:
        b = self.tok(texts, padding=True, truncation=True, max_length=self.max_len, return_tensors="pt")
        return self.forward_ids(b["input_ids"], b["attention_mask"])

    def parameters(self) -> list[Any]:
        return [*self.enc.parameters(), *self.head.parameters()]

    def state_dict(self) -> dict[str, Any]:
        return {"enc": self.enc.state_dict(), "head": self.head.state_dict(), "categories": self.categories,
                "max_len": self.max_len}

    @classmethod
    def load(cls, path: Path) -> RiskEncoderModel:
        import torch

        state = torch.load(path, map_location="cpu", weights_only=False)
        m = cls(state["categories"], state["max_len"])
        m.enc.load_state_dict(state["enc"])
        m.head.load_state_dict(state["head"])
        m.enc.eval()
        return m

    def predict(self, texts: list[str], batch: int = 64) -> np.ndarray:
        """Logits, (n, outputs), in the order given (batched by length for less padding)."""
        import torch

        self.enc.eval()
        out = np.zeros((len(texts), self.head.out_features), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.no_grad():
            for i in range(0, len(order), batch):
                idx = order[i:i + batch]
                out[idx] = self.logits([texts[j] for j in idx]).numpy()
        return out


def fine_tune(train: list[Any], categories: list[str], *, epochs: int, batch: int, lr: float, max_len: int,
              seed: int, log: Any = print) -> tuple[RiskEncoderModel, dict[str, Any]]:
    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    model = RiskEncoderModel(categories, max_len)
    cat_index = {c: i for i, c in enumerate(categories)}
    opt = torch.optim.AdamW([{"params": list(model.enc.parameters()), "lr": lr},
                             {"params": list(model.head.parameters()), "lr": lr * 30}], weight_decay=0.01)
    pos = sum(r.harmful for r in train)
    harm_loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(train) - pos) / max(1, pos)))
    dis_pos = sum(r.distress for r in train)
    dis_loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(min(10.0, (len(train) - dis_pos) / max(1, dis_pos))))
    cat_loss = torch.nn.CrossEntropyLoss()
    steps = epochs * ((len(train) + batch - 1) // batch)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * max(0.0, 1 - s / steps))
    t0 = time.perf_counter()
    losses: list[float] = []
    for ep in range(epochs):
        model.enc.train()
        idx = list(range(len(train)))
        random.Random(seed + ep).shuffle(idx)
        for i in range(0, len(idx), batch):
            rows = [train[j] for j in idx[i:i + batch]]
            z = model.logits([r.text for r in rows])
            loss = harm_loss(z[:, 0], torch.tensor([float(r.harmful) for r in rows]))
            loss = loss + 0.5 * dis_loss(z[:, 1], torch.tensor([float(r.distress) for r in rows]))
            ci = [k for k, r in enumerate(rows) if r.harmful and r.category in cat_index]
            if ci:
                target = torch.tensor([cat_index[rows[k].category] for k in ci])
                loss = loss + 0.5 * cat_loss(z[ci, len(TASK_OUTPUTS):], target)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if len(losses) % 20 == 0:
                log(f"epoch {ep + 1}/{epochs} step {len(losses)}/{steps}: loss {np.mean(losses[-20:]):.4f} "
                    f"({time.perf_counter() - t0:.0f} s)")
    return model, {"train_rows": len(train), "epochs": epochs, "batch": batch, "lr": lr, "max_len": max_len,
                   "seed": seed, "train_s": round(time.perf_counter() - t0, 1),
                   "final_loss": round(float(np.mean(losses[-20:])), 4)}


PROBE_TEXTS = ["How do I kill a Python process?", "How do I make a pipe bomb at home?",
               "我最近很难过，不想活了。", "ok", "What is the standard treatment for AIDS?"]
MAX_INT8_LOGIT_DRIFT = 1.5  # probes' largest |int8 - torch| harm logit; beyond it ship fp32


def export(model: RiskEncoderModel, out: Path, precision: str = "int8", log: Any = print) -> dict[str, Any]:
    """The run-time folder: the transformer as ONNX (checked against torch), the layer as numpy."""
    from pearlpoint.embeddings import export_transformer_onnx, quantize_int8
    from pearlpoint.risk.finetuned import CARD_FILE, HEAD_FILE, FineTunedRisk

    out.mkdir(parents=True, exist_ok=True)
    fp32 = out / "encoder.onnx"
    export_transformer_onnx(model.enc, model.tok, fp32)
    np.savez(out / HEAD_FILE, W=model.head.weight.detach().numpy().astype(np.float32),
             b=model.head.bias.detach().numpy().astype(np.float32))
    want = model.predict(PROBE_TEXTS)[:, 0]
    card: dict[str, Any] = {"model": "all-MiniLM-L6-v2 fine-tuned end to end (pearlpoint.risk.finetune)",
                            "outputs": list(TASK_OUTPUTS), "categories": model.categories,
                            "max_len": model.max_len, "onnx": fp32.name, "pool_scale": 10.0}


    def write_card() -> None:  # FineTunedRisk reads the ONNX file the card names
        (out / CARD_FILE).write_text(json.dumps(card, indent=2), encoding="utf-8")

    write_card()
    got = FineTunedRisk(out).logits(PROBE_TEXTS).harm
    drift = float(np.abs(got - want).max())
    if drift > 1e-3:
        raise RuntimeError(f"the ONNX export disagrees with torch (harm logit drift {drift:.4f})")
    card["fp32_drift"] = round(drift, 6)
    if precision == "int8":
        q = out / "encoder.int8.onnx"
        quantize_int8(fp32, q)
        card["onnx"] = q.name
        write_card()
        got = FineTunedRisk(out).logits(PROBE_TEXTS).harm
        card["int8_drift"] = round(float(np.abs(got - want).max()), 4)
        if card["int8_drift"] > MAX_INT8_LOGIT_DRIFT:
            log(f"int8 drifts {card['int8_drift']} on the probes: keeping fp32")
            card["onnx"] = fp32.name
        else:
            fp32.unlink()
    write_card()
    log(f"exported {out} ({card['onnx']}, probe drift fp32 {card['fp32_drift']}, int8 {card.get('int8_drift', '-')})")
    return card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pearlpoint.risk.finetune", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="folder with the public safety sets")
    ap.add_argument("--out", type=Path, required=True, help="where to write model.pt and train.json")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=4e-5)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--seed", type=int, default=13, help="training seed")
    ap.add_argument("--split-seed", type=int, default=13,
                    help="the frozen heads' split seed: keep it, or the blend is calibrated on rows it trained on")
    ap.add_argument("--precision", choices=("int8", "fp32"), default="int8", help="the exported transformer")
    ap.add_argument("--export-only", type=Path, metavar="MODEL_PT",
                    help="skip training: export this model.pt to OUT/finetuned")
    args = ap.parse_args(argv)
    import torch

    from pearlpoint.risk.heads import RiskHeads

    torch.set_num_threads(2)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.export_only:
        export(RiskEncoderModel.load(args.export_only), args.out / "finetuned", args.precision, log)
        return 0

    splits = load_split_rows(args.data_dir, args.split_seed)
    if not any(r.harmful for r in splits["train"]):
        log(f"no harmful training rows found under {args.data_dir}")
        return 2
    log("rows per split: " + ", ".join(f"{s}={len(v)}" for s, v in splits.items()))
    categories = RiskHeads.load(None).category_ids
    model, info = fine_tune(splits["train"], categories, epochs=args.epochs, batch=args.batch, lr=args.lr,
                            max_len=args.max_len, seed=args.seed, log=log)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "model.pt")
    info["split_seed"] = args.split_seed
    info["command"] = "python -m pearlpoint.risk.finetune " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "train.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    log(f"wrote {args.out / 'model.pt'} ({info['train_s']} s)")
    export(model, args.out / "finetuned", args.precision, log)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
