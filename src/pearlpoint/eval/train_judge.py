"""Train the embedded response judge (seeded, reproducible) and report its agreement with humans.

    python -m pearlpoint.eval.train_judge --data-dir ../shared/data --out src/pearlpoint/classifiers/data
    python -m pearlpoint.eval.train_judge --encoder minilm --out src/pearlpoint/classifiers/data/minilm

Steps: load Do-Not-Answer's 5,634 human-labelled responses and the project's own composed examples;
hold out 20% of *prompts* (every reply to a held-out prompt is held out, so the judge never saw the
question it is tested on); fit the heads on the rest; report accuracy and Cohen's kappa against the
refusal-phrase baseline; then refit on everything and write the weights the package ships.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from pearlpoint.classifiers.features import FEATURE_NAMES, phrase_baseline
from pearlpoint.classifiers.fit import fit_linear_head, fit_mlp_head
from pearlpoint.classifiers.response import (
    JUDGE_PRECISION,
    REFUSAL_CLASSES,
    embedding_columns,
    encoder_embed_fn,
    featurize,
    save_heads,
)
from pearlpoint.embeddings import ENCODERS
from pearlpoint.eval.judge_data import (
    JudgeExample,
    compose_dna_partials,
    compose_seed_examples,
    load_do_not_answer,
)
from pearlpoint.eval.stats import accuracy, cohen_kappa

SEED_WEIGHT = 2.0
PARTIAL_WEIGHT = 2.0


def _cached_features(examples: list[JudgeExample], cache_dir: Path | None, encoder: str = "minilm",
                     precision: str = JUDGE_PRECISION) -> np.ndarray:
    """Embedding is the slow part (minutes on 2 busy cores); cache one matrix per source part, keyed
    by the part's content, so adding examples re-embeds only what is new."""
    parts: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        parts.setdefault(e.source.split(":")[0], []).append(i)
    X: np.ndarray | None = None
    for _name, idx in parts.items():
        sub = _cached_part([examples[i] for i in idx], cache_dir, encoder, precision)
        if X is None:
            X = np.zeros((len(examples), sub.shape[1]), dtype=np.float32)
        X[idx] = sub
    assert X is not None
    return X


def _cached_part(examples: list[JudgeExample], cache_dir: Path | None, encoder: str, precision: str) -> np.ndarray:
    """Embedding columns come from the cache; the cheap text features are always recomputed."""
    from pearlpoint.classifiers.response import text_feature_matrix
    from pearlpoint.embeddings import embedding_dim, get_text_encoder

    cols = embedding_columns(embedding_dim(get_text_encoder(encoder, precision)))
    emb = _cached_embeddings(examples, cache_dir, encoder, precision)[:, :cols]
    return np.concatenate([emb, text_feature_matrix([e.response for e in examples])], axis=1)


def _cached_embeddings(examples: list[JudgeExample], cache_dir: Path | None, encoder: str,
                       precision: str) -> np.ndarray:
    h = hashlib.sha256()
    for e in examples:
        h.update(e.prompt.encode("utf-8", "replace") + b"\x00" + e.response.encode("utf-8", "replace") + b"\x01")
    h.update(b"v1")
    if encoder != "minilm" or precision != JUDGE_PRECISION:  # the MiniLM int8 caches keep their names
        h.update(f"{encoder}:{precision}".encode())
    key = h.hexdigest()[:20]
    if cache_dir:
        f = cache_dir / f"judge_features_{key}.npy"
        if f.exists():
            return np.load(f)
    X = featurize([e.prompt for e in examples], [e.response for e in examples],
                  embed_fn=encoder_embed_fn(encoder, precision))
    if cache_dir:
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cache_dir / f"judge_features_{key}.npy", X)
    return X


def split_by_prompt(groups: list[str], test_share: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out rows; whole prompts go to one side. ``--extra`` rows always train (their
    own held-out part is a separate file, scored by ``bench/bench_judge.py``), and they are left out of
    the shuffle, so adding them does not move the Do-Not-Answer split the figures are compared on."""
    uniq = sorted({g for g in groups if not g.startswith("extra:")})
    rng = np.random.default_rng(seed)
    rng.shuffle(uniq)
    held = set(uniq[: int(round(len(uniq) * test_share))])
    return np.array([g in held for g in groups])


def fit_all(X: np.ndarray, examples: list[JudgeExample], weights: np.ndarray, *, c: float, seed: int,
            refusal_head: str = "mlp", dim: int = 384) -> dict:
    # rows brought in for the harmful head alone carry no refusal class
    ref_mask = np.array([e.refusal is not None for e in examples])
    y_ref = np.array([e.refusal for e in examples if e.refusal is not None])
    if refusal_head == "mlp":
        heads = {"refusal": fit_mlp_head(X[ref_mask], y_ref, weights[ref_mask], seed=seed, dim=dim)}
    else:
        heads = {"refusal": fit_linear_head(X[ref_mask], y_ref, weights[ref_mask], c=c, seed=seed)}
    act_mask = np.array([e.action is not None for e in examples])
    y_act = np.array([e.action if e.action is not None else -1 for e in examples])
    heads["action"] = fit_linear_head(X[act_mask], y_act[act_mask], weights[act_mask], c=c, seed=seed)
    harm_mask = np.array([e.harmful is not None for e in examples])
    y_harm = np.array([e.harmful if e.harmful is not None else -1 for e in examples])
    heads["harmful"] = fit_linear_head(X[harm_mask], y_harm[harm_mask], weights[harm_mask], c=c, seed=seed,
                                       binary=True)
    return heads


def binary(labels) -> list[str]:
    return ["compliance" if x == "full_compliance" else "refusal" for x in labels]


def agreement(gold: list[str], pred: list[str]) -> dict:
    return {"n": len(gold), "accuracy_3way": round(accuracy(gold, pred), 4),
            "kappa_3way": round(cohen_kappa(gold, pred), 4),
            "accuracy_binary": round(accuracy(binary(gold), binary(pred)), 4),
            "kappa_binary": round(cohen_kappa(binary(gold), binary(pred)), 4)}


def evaluate(heads: dict, X: np.ndarray, examples: list[JudgeExample], mask: np.ndarray) -> dict:
    idx = np.where(mask & np.array([e.refusal is not None for e in examples]))[0]
    ex = [examples[i] for i in idx]
    pr = heads["refusal"].proba(X[idx])
    pred = [str(heads["refusal"].classes[j]) for j in pr.argmax(1)]
    gold = [e.refusal for e in ex]
    base = [phrase_baseline(e.response) for e in ex]
    out: dict = {"judge": agreement(gold, pred), "phrase_baseline": agreement(gold, base)}
    for src in ("do_not_answer:", "seed", "dna_partial"):
        sel = [k for k, e in enumerate(ex) if e.source.startswith(src)]
        if sel:
            key = src.rstrip(":")
            out[f"judge_{key}"] = agreement([gold[k] for k in sel], [pred[k] for k in sel])
            out[f"phrase_baseline_{key}"] = agreement([gold[k] for k in sel], [base[k] for k in sel])
    for lang in ("zh",):
        sel = [k for k, e in enumerate(ex) if e.lang == lang]
        if sel:
            out[f"judge_{lang}"] = agreement([gold[k] for k in sel], [pred[k] for k in sel])
    a_idx = [k for k, e in enumerate(ex) if e.action is not None and e.source.startswith("do_not_answer")]
    if a_idx:
        pa = heads["action"].proba(X[idx[a_idx]])
        ap = [int(heads["action"].classes[j]) for j in pa.argmax(1)]
        ag = [ex[k].action for k in a_idx]
        out["action_do_not_answer"] = {"n": len(ag), "accuracy": round(accuracy(ag, ap), 4),
                                       "kappa": round(cohen_kappa(ag, ap), 4)}
    h_idx = [k for k, e in enumerate(ex) if e.harmful is not None and e.source.startswith("do_not_answer")]
    if h_idx:
        ph = heads["harmful"].proba(X[idx[h_idx]])[:, 1]
        hg = [ex[k].harmful for k in h_idx]
        hp = [int(p >= 0.5) for p in ph]
        out["harmful_do_not_answer"] = {"n": len(hg), "accuracy": round(accuracy(hg, hp), 4),
                                        "kappa": round(cohen_kappa(hg, hp), 4),
                                        "positives": int(sum(hg))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pearlpoint.eval.train_judge", description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", default="../shared/data", help="folder holding do_not_answer.jsonl")
    ap.add_argument("--out", required=True, help="folder for judge_weights.npz + judge_meta.json")
    ap.add_argument("--extra", action="append", default=[],
                    help="extra labelled JSONL (prompt, response, refusal or null[, action, harmful]); repeatable")
    ap.add_argument("--extra-weight", type=float, default=1.0,
                    help="sample weight of the --extra rows (human-labelled rows weigh 1, the seed examples 2)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--c", type=float, default=0.05, help="inverse L2 strength of the heads")
    ap.add_argument("--refusal-head", choices=("mlp", "linear"), default="mlp",
                    help="refusal head: one-hidden-layer MLP (default) or logistic regression")
    ap.add_argument("--encoder", choices=ENCODERS, default="use-m3",
                    help="sentence encoder the heads read (default: multilingual USE)")
    ap.add_argument("--precision", choices=("fp32", "int8"), default=JUDGE_PRECISION,
                    help="MiniLM's ONNX precision (USE has one)")
    ap.add_argument("--test-share", type=float, default=0.2)
    ap.add_argument("--cache-dir", default=".pearl-cache/judge", help="embedding cache ('' to disable)")
    ap.add_argument("--no-seed", action="store_true", help="leave out the project's own composed examples")
    ap.add_argument("--no-splice", action="store_true",
                    help="leave out partial refusals spliced from human-labelled refusals + answers")
    ap.add_argument("--no-refit", action="store_true", help="ship the train-split model instead of refitting on all")
    args = ap.parse_args(argv)

    t0 = time.time()
    examples = load_do_not_answer(Path(args.data_dir) / "do_not_answer.jsonl")
    human = list(examples)
    if not args.no_seed:
        examples += compose_seed_examples(args.seed)
    if not args.no_splice:
        examples += compose_dna_partials(human, args.seed)
    for extra in args.extra:
        examples += _load_extra(Path(extra))
    weights = np.array([1.0 if e.source.startswith("do_not_answer:") else
                        args.extra_weight if e.source.startswith("extra:") else SEED_WEIGHT for e in examples])
    # partial refusals are rare among the human labels; weight them up so the head does not drown them
    weights *= np.array([PARTIAL_WEIGHT if e.refusal == "partial_refusal" else 1.0 for e in examples])
    print(f"examples: {len(examples)} ({sum(e.source.startswith('do_not_answer') for e in examples)} human-labelled)",
          file=sys.stderr)
    precision = args.precision if "minilm" in args.encoder else "fp32"
    X = _cached_features(examples, Path(args.cache_dir) if args.cache_dir else None, args.encoder, precision)
    dim = (X.shape[1] - len(FEATURE_NAMES) - 2) // 3
    print(f"features {X.shape} in {time.time() - t0:.0f}s", file=sys.stderr)

    held = split_by_prompt([e.group for e in examples], args.test_share, args.seed)
    train = ~held
    heads = fit_all(X[train], [e for e, m in zip(examples, train, strict=True) if m], weights[train],
                    c=args.c, seed=args.seed, refusal_head=args.refusal_head, dim=dim)
    report = evaluate(heads, X, examples, held)
    report["split"] = {"train_rows": int(train.sum()), "held_out_rows": int(held.sum()),
                       "held_out_prompts": len({e.group for e, m in zip(examples, held, strict=True) if m}),
                       "by": "prompt", "test_share": args.test_share}
    if not args.no_refit:
        heads = fit_all(X, examples, weights, c=args.c, seed=args.seed, refusal_head=args.refusal_head, dim=dim)
    meta = {"encoder": args.encoder, "encoder_precision": precision, "feature_names": FEATURE_NAMES, "layout":
            f"emb(head)[{dim}] emb(rest)[{dim}] emb(prompt)[{dim}] cos(prompt,head) cos(prompt,rest) text_features",
            "refusal_classes": list(REFUSAL_CLASSES), "seed": args.seed, "c": args.c,
            "refusal_head": args.refusal_head,
            "trained_on": "all rows" if not args.no_refit else "train split",
            "n_examples": len(examples), "held_out_agreement": report,
            "command": "python -m pearlpoint.eval.train_judge " + " ".join(argv if argv is not None else sys.argv[1:])}
    out = Path(args.out)
    save_heads(out / "judge_weights.npz", heads, meta)
    print(json.dumps(report, indent=2))
    print(f"wrote {out / 'judge_weights.npz'} in {time.time() - t0:.0f}s", file=sys.stderr)
    return 0


def _load_extra(path: Path) -> list[JudgeExample]:
    from pearlpoint.errors import InputError
    from pearlpoint.io import iter_jsonl_strict

    out = []
    for lineno, row in iter_jsonl_strict(path):
        for f in ("prompt", "response", "refusal"):
            if f not in row:
                raise InputError("missing; expected {prompt, response, refusal[, action, harmful]}",
                                 path=path, line=lineno, field=f)
        if row["refusal"] is None and row.get("harmful") not in (0, 1):
            raise InputError("null refusal needs a harmful label (0 or 1)", path=path, line=lineno, field="harmful")
        if row["refusal"] is not None and row["refusal"] not in REFUSAL_CLASSES:
            raise InputError(f"must be one of {', '.join(REFUSAL_CLASSES)} or null", path=path, line=lineno,
                             field="refusal")
        out.append(JudgeExample(row["prompt"], row["response"], row["refusal"], row.get("action"), row.get("harmful"),
                                f"extra:{row['prompt']}", f"extra:{path.name}", row.get("lang", "en")))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
