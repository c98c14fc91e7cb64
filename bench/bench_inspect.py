"""inspect vs ``pearl eval``: the constructive suite on the embedded model, raw and through CSA, scored
by both harnesses on the same rows, each run as its user would run it (two CLIs, fresh processes,
response cache off so neither reuses the other's answers).

    .venv-extras/inspect/bin/python bench/bench_inspect.py --limit 12 --out runs/bench_inspect

Needs the inspect extra (``bash scripts/test-extras.sh .venv inspect`` builds .venv-extras/inspect).
Prints and writes ``summary.json``: per mode, the mean constructive score (x100, beta 2) from each
harness, how many answers were identical, and the mean |difference| of the per-row scores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def pick_rows(limit: int, out: Path) -> Path:
    """The first ``limit`` constructive rows, round-robin over level x language, as a data file both
    harnesses read (so neither applies its own limit logic)."""
    from pearlpoint.eval.loaders import load_suite, packaged_path

    raw = [json.loads(line) for line in packaged_path("data/constructive_suite.jsonl").read_text("utf-8").splitlines()
           if line.strip()]
    items = load_suite("constructive").items
    groups: dict[tuple[str, str], list[int]] = {}
    for n, it in enumerate(items):
        groups.setdefault((it.level or "", it.lang), []).append(n)
    order: list[int] = []
    while len(order) < min(limit, len(items)):
        for g in sorted(groups):
            if groups[g] and len(order) < limit:
                order.append(groups[g].pop(0))
    path = out / "rows.jsonl"
    with path.open("w", encoding="utf-8") as f:
        for n in order:
            f.write(json.dumps({**raw[n], "id": items[n].id}, ensure_ascii=False) + "\n")
    return path


def run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def pearl_rows(folder: Path) -> dict[str, dict[str, Any]]:
    from pearlpoint.eval.metrics import HEADLINE_BETA, normalised_constructive

    out = {}
    for line in (folder / "responses.jsonl").read_text("utf-8").splitlines():
        r = json.loads(line)
        score = (normalised_constructive(r["satisfaction"], r["safety"], HEADLINE_BETA)
                 if r.get("satisfaction") is not None and r.get("safety") is not None else None)
        out[str(r["id"])] = {"answer": r.get("response", ""), "score": score}
    return out


def inspect_rows(log_dir: Path) -> dict[str, dict[str, Any]]:
    logs = sorted(log_dir.glob("*.json"))
    if len(logs) != 1:
        raise SystemExit(f"expected one inspect log in {log_dir}, found {len(logs)}")
    log = json.loads(logs[0].read_text("utf-8"))
    out = {}
    for s in log.get("samples", []):
        sc = s["scores"]["constructive_score"]["value"]
        out[str(s["id"])] = {"answer": s["output"]["choices"][0]["message"]["content"] if s["output"]["choices"] else "",
                             "score": None if sc is None or sc != sc else float(sc)}
    return out


def _text(answer: Any) -> str:
    if isinstance(answer, list):
        return "".join(p.get("text", "") for p in answer if isinstance(p, dict))
    return str(answer or "")


def compare(a: dict[str, dict], b: dict[str, dict]) -> dict[str, Any]:
    ids = sorted(set(a) & set(b))
    both = [i for i in ids if a[i]["score"] is not None and b[i]["score"] is not None]
    mean = lambda xs: round(100 * sum(xs) / len(xs), 1) if xs else None  # noqa: E731
    return {"rows": len(ids), "scored_by_both": len(both),
            "pearl_eval_mean_x100": mean([a[i]["score"] for i in both]),
            "inspect_mean_x100": mean([b[i]["score"] for i in both]),
            "identical_answers": sum(_text(a[i]["answer"]).strip() == _text(b[i]["answer"]).strip() for i in ids),
            "mean_abs_row_diff_x100": mean([abs(a[i]["score"] - b[i]["score"]) for i in both])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--csa-steps", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--modes", default="raw,csa")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_inspect")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = pick_rows(args.limit, args.out)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PEARL_CACHE": "false"}
    summary: dict[str, Any] = {"limit": args.limit, "csa_steps": args.csa_steps, "max_tokens": args.max_tokens,
                               "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
                               "modes": {}}
    for mode in args.modes.split(","):
        csa = mode == "csa"
        tag = f"{mode}-s{args.csa_steps}" if csa else mode
        pe_dir, in_dir = args.out / f"pearl-eval-{tag}", args.out / f"inspect-{tag}"
        if in_dir.exists():  # inspect starts over; pearl eval resumes its own folder (same rows file)
            for f in in_dir.glob("*"):
                f.unlink()
        pe_cmd = [sys.executable, "-m", "pearlpoint", "eval", "constructive", "--data", str(rows), "--out", str(pe_dir),
                  "--max-tokens", str(args.max_tokens)] + (["--csa", "--csa-steps", str(args.csa_steps)] if csa else [])
        in_cmd = [str(bindir / "inspect"), "eval", "pearlpoint/constructive", "--model", "pearlpoint/embedded",
                  "-T", f"data={rows}", "-T", f"max_tokens={args.max_tokens}",
                  "--log-dir", str(in_dir), "--log-format", "json", "--display", "none"] + (
                      ["-T", "csa=true", "-T", f"csa_steps={args.csa_steps}"] if csa else [])
        print(f"{mode}: pearl eval ...", flush=True)
        t_pe = run(pe_cmd, env)
        print(f"{mode}: inspect eval ...", flush=True)
        t_in = run(in_cmd, env)
        res = compare(pearl_rows(pe_dir), inspect_rows(in_dir))
        res.update(pearl_eval_wall_s=round(t_pe, 1), inspect_wall_s=round(t_in, 1),
                   commands={"pearl_eval": " ".join(pe_cmd), "inspect": " ".join(in_cmd)})
        summary["modes"][mode] = res
        print(json.dumps({k: v for k, v in res.items() if k != "commands"}), flush=True)
    previous = args.out / "summary.json"  # a run of one mode keeps the other mode's figures
    if previous.exists():
        kept = json.loads(previous.read_text("utf-8")).get("modes", {})
        summary["modes"] = {**kept, **summary["modes"]}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"wrote {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
