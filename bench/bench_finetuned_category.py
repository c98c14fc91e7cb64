"""Category accuracy on harmful rows: the shipped frozen category head vs a fine-tuned encoder's category
output (issue 14), side by side on the splits neither trained on.

    python bench/bench_finetuned_category.py --data-dir ../shared/data --finetuned runs/ft/finetuned

The fine-tuned folder comes from ``python -m pearlpoint.risk.finetune`` (same split seed as the heads).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--finetuned", type=Path, required=True, help="a folder written by pearlpoint.risk.finetune")
    ap.add_argument("--split-seed", type=int, default=13)
    args = ap.parse_args()

    from pearlpoint.risk.embedded import EmbeddedAssessor
    from pearlpoint.risk.finetune import load_split_rows
    from pearlpoint.risk.finetuned import FineTunedRisk

    splits = load_split_rows(args.data_dir, args.split_seed)
    ft = FineTunedRisk(args.finetuned)
    frozen = EmbeddedAssessor()
    for name in ("test", "public_test", "plain_test"):
        rows = [r for r in splits[name] if r.harmful and r.category in ft.categories]
        if not rows:
            continue
        texts, gold = [r.text for r in rows], [r.category for r in rows]
        by_ft = [ft.categories[i] for i in ft.logits(texts).category.argmax(1)]
        by_frozen = [frozen.category_ids[int(np.argmax(s.category_probs))] for s in frozen.score(texts)]
        print(json.dumps({"split": name, "rows": len(rows),
                          "frozen_accuracy": round(float(np.mean([p == g for p, g in zip(by_frozen, gold, strict=True)])), 3),
                          "finetuned_accuracy": round(float(np.mean([p == g for p, g in zip(by_ft, gold, strict=True)])), 3)}),
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
