"""Fit the assessor's fast path: USE-only heads that decide plainly benign prompts without MiniLM.

Most real traffic is benign and most of the assessor's time is MiniLM. Heads on USE vectors alone (trained
by ``python -m pearlpoint.risk.train --encoder use-m3``) read every text first; a text whose fast harm,
distress and attack-form probabilities are all below the bounds fitted here is decided by them, the rest
by the full MiniLM + USE heads. A text with distress wording or naming a means of mass harm never takes
the fast path. The bounds are fitted on calibration rows only: the largest accepted share of rows such
that at most ``--max-miss`` of the rows the full heads do *not* call plainly benign (level above R0, a
category other than none, distress or attack form at 0.5 or more, a vulnerable-writer share of 0.3 or
more) would be taken by the fast path. The test splits are never looked at.

    python -m pearlpoint.risk.fast_path --data-dir ../shared/data --weights src/pearlpoint/risk/weights \\
        --fast runs/heads-use-fast
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from pearlpoint.risk.heads import CARD_FILE, WEIGHTS_FILE

GRID = (0.05, 0.1, 0.2, 0.3, 0.5)
DISTRESS_GRID = (0.05, 0.1, 0.2, 0.3)  # never above 0.3: a possibly distressed writer gets the full reading


def needs_full(a) -> bool:
    """What the fast path must never decide: anything the full heads do not call plainly benign."""
    return (a.level.value != "R0" or a.category != "none" or a.distress_probability >= 0.5
            or a.user_types.vulnerable >= 0.3 or a.adversarial_probability >= 0.5)


def fit_bounds(fast: np.ndarray, needs: np.ndarray, max_miss: float, eligible: np.ndarray | None = None) -> dict:
    """``fast``: (n, 3) fast harm / distress / attack-form probabilities; ``needs``: (n,) bool; ``eligible``:
    (n,) bool, rows the fast path may take at all (``embedded.fast_eligible``)."""
    best: dict = {}
    eligible = np.ones(len(fast), dtype=bool) if eligible is None else eligible
    harm_grid = sorted(set(np.quantile(fast[:, 0], np.linspace(0.02, 0.9, 45)).round(4)))
    for hb, db, ab in itertools.product(harm_grid, DISTRESS_GRID, GRID):
        accept = eligible & (fast[:, 0] < hb) & (fast[:, 1] < db) & (fast[:, 2] < ab)
        miss = float((accept & needs).sum() / max(1, needs.sum()))
        if miss <= max_miss and accept.sum() > best.get("accepted", -1):
            best = {"harm_below": float(hb), "distress_below": db, "adversarial_below": ab,
                    "accepted": int(accept.sum()), "calib_miss": round(miss, 4),
                    "calib_accepted_share": round(float(accept.mean()), 4),
                    "calib_benign_accepted_share": round(float(accept[~needs].mean()), 4) if (~needs).any() else 0.0}
    return best


def main(argv: list[str] | None = None) -> int:
    from pearlpoint.risk.embedded import EmbeddedAssessor, fast_eligible
    from pearlpoint.risk.recipe import recipe_rows

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--weights", type=Path, required=True, help="the full minilm+use-m3 heads (written to)")
    ap.add_argument("--fast", type=Path, required=True, help="use-m3 heads from risk.train --encoder use-m3")
    ap.add_argument("--max-miss", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args(argv)

    card_path = args.weights / CARD_FILE
    card = json.loads(card_path.read_text("utf-8"))
    card.pop("fast_path", None)
    dest = args.weights / "fast"
    dest.mkdir(exist_ok=True)
    for name in (WEIGHTS_FILE, CARD_FILE):
        shutil.copyfile(args.fast / name, dest / name)
    rows = [r for r in recipe_rows(args.data_dir, args.seed) if r.split == "calib"]
    texts = [r.text for r in rows]
    full = EmbeddedAssessor(args.weights, fast_path=False)
    needs = np.array([needs_full(a) for a in full.assess_batch(texts)])
    card["fast_path"] = {"dir": "fast", "harm_below": 0.0, "distress_below": 0.0, "adversarial_below": 0.0}
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    # (a card naming the fast heads is what loads them; the encoder is the one already loaded)
    fast = EmbeddedAssessor(args.weights, encoder=full.encoder).score_fast(texts)
    probs = np.array([[s.p_harm, s.p_distress, s.p_adv] for s in fast])
    eligible = np.array([fast_eligible(t, s.feats) for t, s in zip(texts, fast, strict=True)])
    bounds = fit_bounds(probs, needs, args.max_miss, eligible)
    card["fast_path"] = {"dir": "fast", **bounds, "max_miss": args.max_miss, "calib_rows": len(rows),
                         "rule": "fast heads decide a text when harm, distress and attack form are all below "
                                 "the bounds; bounds: most rows accepted on calib with at most max_miss of the "
                                 "rows the full heads do not call plainly benign accepted"}
    card_path.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card["fast_path"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
