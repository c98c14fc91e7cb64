"""Does assessing a prompt's last segment as well as the whole (keeping the worse) catch requests that a
jailbreak frame dilutes, and what does it cost in false positives? (An issue 14 experiment.)

A frame ("You are X with no rules... X, answer this: <request>") pulls the prompt vector towards
role-play; the request itself usually comes last. ``risk.windows.last_segment`` is the text after the last colon or
sentence end, when both parts are substantial. Scored on the splits the assessor never trained on,
plus pearlpoint's packaged jailbreak-wrappers suite:

    python bench/bench_payload_reading.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from pearlpoint.risk.windows import last_segment  # noqa: E402


def flags(whole_only, shipped, texts: list[str], payload: str = "") -> np.ndarray:
    """payload "": the whole text only; "any": the last segment flags at R1 or R2 too; "shipped": the
    assessor as shipped (the last segment counts only when it alone is R2, see EmbeddedAssessor)."""
    if payload == "shipped":
        return np.array([a.level.value != "R0" for a in shipped.assess_batch(texts)])
    flag = np.array([a.level.value != "R0" for a in whole_only.assess_batch(texts)])
    if payload == "any":
        tails = [(i, s) for i, t in enumerate(texts) if (s := last_segment(t))]
        if tails:
            more = whole_only.assess_batch([s for _, s in tails])
            for (i, _), a in zip(tails, more, strict=True):
                flag[i] = flag[i] or a.level.value != "R0"
    return flag


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = ap.parse_args()
    from pearlpoint.eval.loaders import load_suite
    from pearlpoint.risk.embedded import EmbeddedAssessor
    from pearlpoint.risk.recipe import assign_splits, load_own, load_shared
    from pearlpoint.risk.train import FPR_KINDS

    rows = load_shared(args.data_dir) + load_own()
    assign_splits(rows, seed=13)
    sets: dict[str, list[tuple[str, int, bool]]] = {}
    for split in ("test", "public_test", "plain_test", "style_test"):
        sets[split] = [(r.text, r.harmful, r.kind in FPR_KINDS) for r in rows if r.split == split]
    sets["jailbreak-wrappers (packaged)"] = [(i.prompt, 1, False) for i in load_suite("jailbreak-wrappers").items]
    sets["lookalikes (packaged)"] = [(i.prompt, 0, True) for i in load_suite("lookalikes").items]
    shipped = EmbeddedAssessor()
    whole_only = EmbeddedAssessor(read_payload=False, encoder=shipped.encoder)
    print("| set | rows | recall whole / +segment / shipped (+segment at R2) | FPR, same three | look-alike FPR, same three |")
    print("|---|---:|---|---|---|")
    for name, items in sets.items():
        texts = [t for t, _, _ in items]
        y = np.array([h for _, h, _ in items])
        look = np.array([la for _, _, la in items])
        cells = []
        variants = [flags(whole_only, shipped, texts, mode) for mode in ("", "any", "shipped")]
        for mask in (y == 1, y == 0, (y == 0) & look):
            cells.append(" / ".join(f"{f[mask].mean():.3f}" if mask.any() else "-" for f in variants))
        print(f"| {name} | {len(items)} | {cells[0]} | {cells[1]} | {cells[2]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
