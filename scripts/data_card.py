"""Write the data card of the embedded classifiers: where every training row comes from, under which
licence, how many of each, and whether any held-out or benchmark row leaks into training.

    python scripts/data_card.py --data-dir ../shared/data --out docs/data-card.md \
        [--against path/to/benchmark.jsonl ...]

The overlap check compares each held-out set (and each ``--against`` file, e.g. a local copy of a
benchmark the project is measured on) with the rows the assessor trains and calibrates on: exact
matches after normalisation, and near duplicates (Jaccard of character 5-gram shingles >= 0.6, which
catches a reworded or re-punctuated copy of the same request). A benchmark file is read by its first
text field among prompt / forbidden_prompt / Behavior / Goal / question / text.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

NEAR = 0.6
TEXT_FIELDS = ("prompt", "forbidden_prompt", "Behavior", "Goal", "question", "text")


def normalise(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


def shingles(text: str, n: int = 5) -> frozenset[str]:
    t = normalise(text)
    return frozenset(t[i:i + n] for i in range(max(1, len(t) - n + 1)))


class OverlapIndex:
    """Training rows by exact normal form and by shingle, for near-duplicate lookups."""

    def __init__(self, texts: list[str]) -> None:
        self.exact = {normalise(t) for t in texts}
        self.sh = [shingles(t) for t in texts]
        self.by_gram: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(self.sh):
            for g in s:
                self.by_gram[g].append(i)

    def best(self, text: str) -> float:
        q = shingles(text)
        hits: Counter[int] = Counter()
        for g in q:
            for i in self.by_gram.get(g, ()):
                hits[i] += 1
        best = 0.0
        for i, shared in hits.most_common(20):
            best = max(best, shared / (len(q) + len(self.sh[i]) - shared))
        return best


def read_texts(path: Path) -> list[str]:
    from pearlpoint.io import iter_jsonl_strict

    if path.suffix == ".txt":
        return [ln.strip() for ln in path.read_text("utf-8").splitlines() if ln.strip()]
    out = []
    for _, row in iter_jsonl_strict(path):
        text = next((row[f] for f in TEXT_FIELDS if isinstance(row.get(f), str) and row[f].strip()), None)
        if text:
            out.append(text)
    return out


def licences(data_dir: Path) -> dict[str, str]:
    try:
        manifest = json.loads((data_dir / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: str(entry.get("license", "")) for name, entry in manifest.items() if isinstance(entry, dict)}


SOURCE_FILES = {"do_not_answer": "do_not_answer", "harmbench": "harmbench_behaviors_text_all",
                "jbb_harmful": "jbb_behaviors", "jbb_benign": "jbb_behaviors",
                "simplesafetytests": "simplesafetytests", "strata_sword": "strata_sword_cn",
                "strongreject": "strongreject_small"}


def judge_section(data_dir: Path, lic: dict[str, str]) -> list[str]:
    """The response judge (answer class, harmful answer) and so the guard's checker train on answers."""
    from pearlpoint.eval.judge_data import compose_seed_examples, load_do_not_answer

    out = ["## The response judge's data", "",
           "| source | licence | answers | prompts | harmful (human) | refusal classes |", "|---|---|---:|---:|---:|---|"]
    sets = [("do_not_answer (6 models' replies, human labels)", lic.get("do_not_answer", ""),
             load_do_not_answer(data_dir / "do_not_answer.jsonl") if (data_dir / "do_not_answer.jsonl").is_file() else []),
            ("pearlpoint seed examples (written by the project)", "pearlpoint's own", compose_seed_examples())]
    for name, licence, rows in sets:
        classes = Counter(r.refusal for r in rows)
        out.append(f"| {name} | {licence} | {len(rows)} | {len({r.group for r in rows})} | "
                   f"{sum(1 for r in rows if r.harmful == 1)} | "
                   + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) + " |")
    return out + ["", "Held out by prompt (`python -m pearlpoint.eval.train_judge`): a prompt's six answers share one split.", "",
                  "Tried and not shipped: PyRIT 1.1.0's `many_shot_examples.json` (MIT; 400 answers to HarmBench",
                  "behaviours, harmful / not harmful labelled by an LLM judge; pinned wheel hash; none matched an",
                  "AdvBench or StrongREJECT-small prompt), brought in by `scripts/outside_answers.py` as 284 training and",
                  "116 held-out answers split by prompt. It raised the harmful head's false-positive rate on our hand",
                  "labels from 0.12 to 0.52 (docs/benchmarks.md, \"Outside answers for the judge's harmful head\"), so",
                  "the shipped judge does not train on it.", ""]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "data-card.md")
    ap.add_argument("--against", type=Path, action="append", default=[],
                    help="a benchmark file to check for overlap with the training rows (repeatable)")
    args = ap.parse_args()
    from pearlpoint.eval.packaged import lookalike_rows, wrapped_harmful_rows
    from pearlpoint.risk.augment import augment
    from pearlpoint.risk.recipe import HELD_OUT_SPLITS, assign_splits, load_own, load_shared

    notes: list[str] = []
    rows = load_shared(args.data_dir, notes) + load_own()
    assign_splits(rows, seed=13)
    aug = augment([r for r in rows if r.split in ("train", "calib", "test")], seed=13)
    lic = licences(args.data_dir)

    lines = [
        "# Data card: the embedded classifiers' training data",
        "",
        f"Written by `python scripts/data_card.py --data-dir {args.data_dir}` on {dt.date.today().isoformat()}"
        " (the assessor's recipe at seed 13, as `python -m pearlpoint.risk.train` builds it). Content warning:"
        " the sources hold harmful and self-harm-related prompts.",
        "",
        "## Rules",
        "",
        "- Public sets come in only under permissive licences, from their public repositories, recorded below.",
        "- Never trained on, never brought in: XSTest, StrongREJECT (full or small), AdvBench, the English",
        "  Strata-Sword set, or any row a public set copied from them. JBB-Behaviors names its rows' sources;",
        "  its AdvBench rows are dropped by the recipe (`risk.recipe.MEASURED_ON`). StrongREJECT-small is here",
        "  only as a test set (`public_test`), never trained or calibrated on.",
        "- Two sets written by others that no model trained on are kept for reporting: StrongREJECT-small",
        "  (`public_test`) and the second author's `heldout_plain.txt` (`plain_test`); plus the project's",
        "  chatty look-alikes (`style_test`) and the packaged eval suites (`lookalikes`, `jailbreak-wrappers`).",
        "",
        "## Sources",
        "",
        "| source | file | licence | rows | harmful | benign | en | zh | splits |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    by_source: dict[str, list] = defaultdict(list)
    for r in rows + aug:  # augmented rows carry "<source>+augment"
        by_source[r.source].append(r)
    for src in sorted(by_source):
        rs = by_source[src]
        base = src.removesuffix("+augment")
        file = SOURCE_FILES.get(base, "pearlpoint/risk/data/*.txt" if base.startswith("pearlpoint_") else base)
        licence = lic.get(file, "pearlpoint's own (written by the project)" if base.startswith("pearlpoint_") else "")
        splits = Counter(r.split for r in rs)
        lines.append(f"| {src} | {file} | {licence} | {len(rs)} | {sum(r.harmful for r in rs)} | "
                     f"{sum(1 - r.harmful for r in rs)} | {sum(r.lang == 'en' for r in rs)} | "
                     f"{sum(r.lang == 'zh' for r in rs)} | "
                     + ", ".join(f"{k} {v}" for k, v in sorted(splits.items())) + " |")
    lines += ["", "Augmented rows (`+augment`) are the project's own attack templates (encodings, splits, frames)",
              "applied to train / calib / test rows; they keep their row's split.", ""]
    if notes:
        lines += ["Recipe notes:", ""] + [f"- {n}" for n in notes] + [""]

    lines += judge_section(args.data_dir, lic)
    fitted = [r.text for r in rows + aug if r.split in ("train", "calib")]
    index = OverlapIndex(fitted)
    checks: list[tuple[str, list[str]]] = [
        (f"{split} (held out)", [r.text for r in rows if r.split == split]) for split in HELD_OUT_SPLITS]
    checks.append(("test (group split)", [r.text for r in rows if r.split == "test"]))
    checks.append(("packaged suite: lookalikes", [r["prompt"] for r in lookalike_rows()]))
    checks.append(("packaged suite: jailbreak-wrappers", [r["prompt"] for r in wrapped_harmful_rows()]))
    for path in args.against:
        try:
            checks.append((f"--against {path.name}", read_texts(path)))
        except (OSError, ValueError) as exc:
            print(f"data_card: cannot read {path}: {exc}", file=sys.stderr)
            return 2
    lines += ["## Overlap with the rows trained and calibrated on", "",
              f"{len(fitted)} train + calib rows (augmented included). Exact: the same text after lower-casing and"
              f" dropping punctuation. Near: character 5-gram Jaccard >= {NEAR}.", "",
              "| set | rows | exact | near | highest Jaccard |", "|---|---:|---:|---:|---:|"]
    for name, texts in checks:
        exact = sum(normalise(t) in index.exact for t in texts)
        scores = [index.best(t) for t in texts]
        near = sum(s >= NEAR for s in scores)
        lines.append(f"| {name} | {len(texts)} | {exact} | {near} | {max(scores, default=0):.2f} |")
        print(f"{name}: {len(texts)} rows, exact {exact}, near {near}", file=sys.stderr)
    lines += ["", "The `test` split shares groups with nothing in train (split by group), but a public set can hold",
              "near-identical rows under different groups; the count above says how many.", ""]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
