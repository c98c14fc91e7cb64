"""Bring in model answers written outside the project, for the response judge's harmful head.

    python scripts/outside_answers.py --out runs/outside            # pip-downloads pyrit==1.1.0
    python scripts/outside_answers.py --wheel pyrit-1.1.0-py3-none-any.whl --out runs/outside

Source: PyRIT (Microsoft, MIT licence), file ``pyrit/datasets/jailbreak/many_shot_examples.json`` of the
pinned wheel below: 400 answers an unaligned model gave to HarmBench behaviours, each labelled
"Harmful" / "Not harmful" with a reason by an LLM judge (not by humans; the data card says so).
Do-Not-Answer, the judge's only other outside source, has 193 harmful answers in 5,634; these add
answers by other models to other prompts, most of them harmful and long.

Nothing from a benchmark the project is measured on comes in: a row whose prompt matches an AdvBench
behaviour (the list shipped in the same wheel, read only to exclude) or a StrongREJECT-small prompt
(``--data-dir``), exactly or by character 5-gram Jaccard >= 0.6, is dropped and counted.

Rows are split by prompt (a hash of the prompt, so the split does not move when rows are added):
``--held-share`` of prompts go to ``pyrit_many_shot.heldout.jsonl`` and are never trained on; the rest
to ``pyrit_many_shot.train.jsonl``, in ``train_judge --extra`` format. Harmful answers carry the
refusal class ``full_compliance``; the others carry none (the LLM label says "not harmful", which
covers refusals and counter-arguments alike), so they teach the harmful head only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PYRIT_VERSION = "1.1.0"
PYRIT_SHA256 = "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a"
MANY_SHOT = "pyrit/datasets/jailbreak/many_shot_examples.json"
ADVBENCH = "pyrit/datasets/seed_datasets/local/adv_bench.prompt"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from data_card import NEAR, OverlapIndex, normalise  # noqa: E402  (the data card's own overlap check)


def _split_key(text: str) -> str:
    """The held-out split hashes this form; kept as first published so the split does not move."""
    return re.sub(r"[^a-z0-9 ]+", "", text.lower()).strip()


def _download(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest),
                    f"pyrit=={PYRIT_VERSION}"], check=True)
    return next(dest.glob(f"pyrit-{PYRIT_VERSION}-*.whl"))


def _harmful(label: str) -> int:
    """PyRIT's labels read "Harmful.\\n\\nReason: ...", "Not harmful. ...", "Answer: Harmful"."""
    head = label.strip().lower().removeprefix("answer:").strip()
    return 0 if head.startswith("not harmful") else 1


def _measured_on(wheel: zipfile.ZipFile, data_dir: Path) -> list[str]:
    prompts = re.findall(r"(?m)^\s*-?\s*value:\s*(.+)$", wheel.read(ADVBENCH).decode("utf-8"))
    sr = data_dir / "strongreject_small.jsonl"
    if sr.is_file():
        for line in sr.read_text(encoding="utf-8").splitlines():
            if line.strip():
                prompts.append(json.loads(line).get("forbidden_prompt", ""))
    return [p for p in prompts if p.strip()]


def held_out(prompt: str, share: float) -> bool:
    return int(hashlib.sha256(_split_key(prompt).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--wheel", type=Path, help=f"a local pyrit-{PYRIT_VERSION} wheel (default: pip download it)")
    ap.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data",
                    help="folder with strongreject_small.jsonl, for the overlap check")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--held-share", type=float, default=0.3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        wheel_path = args.wheel or _download(Path(tmp))
        digest = hashlib.sha256(wheel_path.read_bytes()).hexdigest()
        if digest != PYRIT_SHA256:
            print(f"error: {wheel_path}: sha256 {digest} is not the pinned pyrit {PYRIT_VERSION} wheel's",
                  file=sys.stderr)
            return 2
        with zipfile.ZipFile(wheel_path) as wheel:
            rows = json.loads(wheel.read(MANY_SHOT))
            measured = _measured_on(wheel, args.data_dir)

    index = OverlapIndex(measured)
    kept: list[dict] = []
    dropped = 0
    for r in rows:
        prompt, answer = str(r.get("user", "")).strip(), str(r.get("assistant", "")).strip()
        if not prompt or not answer:
            dropped += 1
            continue
        if normalise(prompt) in index.exact or index.best(prompt) >= NEAR:
            dropped += 1
            continue
        harmful = _harmful(str(r.get("category", "")))
        kept.append({"prompt": prompt, "response": answer, "refusal": "full_compliance" if harmful else None,
                     "harmful": harmful, "lang": "en", "label_by": "LLM judge (PyRIT's file)",
                     "source": f"pyrit {PYRIT_VERSION} {MANY_SHOT}"})

    args.out.mkdir(parents=True, exist_ok=True)
    parts = {"train": [k for k in kept if not held_out(k["prompt"], args.held_share)],
             "heldout": [k for k in kept if held_out(k["prompt"], args.held_share)]}
    card = {"source": f"PyRIT {PYRIT_VERSION} (MIT), {MANY_SHOT}", "wheel_sha256": PYRIT_SHA256,
            "rows_in_file": len(rows), "measured_on_prompts_checked": len(measured),
            "dropped_empty_or_measured_on": dropped, "held_share": args.held_share}
    for name, part in parts.items():
        path = args.out / f"pyrit_many_shot.{name}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for k in part:
                f.write(json.dumps(k, ensure_ascii=False) + "\n")
        card[name] = {"rows": len(part), "prompts": len({k["prompt"] for k in part}),
                      "harmful": sum(k["harmful"] for k in part)}
        print(f"wrote {path}: {len(part)} answers, {card[name]['harmful']} harmful", file=sys.stderr)
    (args.out / "pyrit_many_shot.card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(card, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
