"""Evidence for the evaluation area: the embedded model raw vs CSA-wrapped on three suites, side by
side, plus the embedded response judge's agreement with human labels vs the phrase baseline.

    nice python bench/bench_eval.py --out runs/bench_eval --limit-constructive 18 --limit-strata 18 \
        --limit-jbb 20 --csa-steps 1 --max-tokens 128

Runs are resumable (rerun the same command). Writes one folder per (suite, mode), a compare report
per suite, and ``summary.md`` with the table that goes into docs/bench/eval.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def run_pair(suite: str, data: str | None, limit: int, out: Path, *, csa_steps: int, max_tokens: int,
             generator, judge_model, settings, modes: list[str]) -> dict[str, dict]:
    from pearlpoint.eval.runner import EvalConfig, EvalRunner

    results = {}
    for mode in modes:
        cfg = EvalConfig(suite=suite, data=data, limit=limit, csa=(mode == "csa"), judge="embedded",
                         max_tokens=max_tokens, csa_steps=csa_steps, model="embedded")
        runner = EvalRunner(cfg, generator=generator, judge_model=judge_model, settings=settings)
        t0 = time.perf_counter()
        folder = out / f"{suite}-{mode}"

        def progress(done: int, total: int, _s=suite, _m=mode) -> None:
            print(f"  {_s} {_m}: {done}/{total}", flush=True)

        from pearlpoint.llm import run_sync

        metrics = run_sync(runner.arun(folder, progress=progress))
        metrics["bench_wall_s"] = round(time.perf_counter() - t0, 1)
        results[mode] = metrics
    return results


def fmt(stat: dict | None, digits: int = 1) -> str:
    if not stat or stat.get("value") is None:
        return "-"
    lo, hi = stat["ci"]
    return f"{stat['value']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def rows_for(suite: str, mode: str, m: dict) -> list[list[str]]:
    out = []
    c, j, o, s = m.get("constructive"), m.get("jailbreak"), m.get("over_refusal"), m.get("refusal_style")
    n = m.get("run", {}).get("items_done", 0)
    if c:
        out.append([suite, mode, str(n), "constructive score (beta=2, x100)", fmt(c["score"])])
        out.append([suite, mode, str(n), "satisfaction (-1..1)", fmt(c["satisfaction"], 2)])
        out.append([suite, mode, str(n), "safety (0..1)", fmt(c["safety"], 2)])
    if j:
        out.append([suite, mode, str(n), "jailbreak score (100 - mean ASR)", fmt(j["score"])])
        for lvl, st in j["asr_by_level"].items():
            out.append([suite, mode, str(st["n"]), f"ASR % level {lvl}", fmt(st)])
    if o and "safe_any_refusal_rate" in o:
        out.append([suite, mode, str(o["n_safe"]), "refusal rate on safe prompts %", fmt(o["safe_any_refusal_rate"])])
    if s:
        out.append([suite, mode, str(s["n"]), "full compliance / partial / full refusal %",
                    " / ".join(f"{s['shares'][k]['value']:.0f}" for k in ("full_compliance", "partial_refusal",
                                                                          "full_refusal"))])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/bench_eval")
    ap.add_argument("--data-dir", default="../shared/data")
    ap.add_argument("--limit-constructive", type=int, default=18)
    ap.add_argument("--limit-strata", type=int, default=18)
    ap.add_argument("--limit-jbb", type=int, default=20)
    ap.add_argument("--csa-steps", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--modes", default="raw,csa")
    ap.add_argument("--suites", default="constructive,strata-sword,jbb")
    ap.add_argument("--rejudge-only", action="store_true", help="re-run the embedded judge on stored responses")
    args = ap.parse_args()

    from pearlpoint.config import get_settings
    from pearlpoint.eval.report import render_compare
    from pearlpoint.eval.runner import rejudge
    from pearlpoint.llm import get_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir)
    plan = {"constructive": (None, args.limit_constructive),
            "strata-sword": (str(data_dir / "strata_sword_cn.jsonl"), args.limit_strata),
            "jbb": (str(data_dir / "jbb_behaviors.jsonl"), args.limit_jbb)}
    modes = args.modes.split(",")
    settings = get_settings()
    generator = get_model("embedded", settings=settings)
    judge_model = get_model("embedded", settings=settings, role="judge", accounting=generator.accounting)
    table = []
    for suite in args.suites.split(","):
        data, limit = plan[suite]
        print(f"== {suite} (limit {limit})", flush=True)
        if args.rejudge_only:
            res = {m: rejudge(out / f"{suite}-{m}") for m in modes if (out / f"{suite}-{m}" / "run.json").exists()}
        else:
            res = run_pair(suite, data, limit, out, csa_steps=args.csa_steps, max_tokens=args.max_tokens,
                           generator=generator, judge_model=judge_model, settings=settings, modes=modes)
        for mode, m in res.items():
            table += rows_for(suite, mode, m)
        if len(res) > 1:
            html_text, cmp = render_compare([out / f"{suite}-{m}" for m in res])
            (out / f"compare-{suite}.html").write_text(html_text, encoding="utf-8")
            (out / f"compare-{suite}.json").write_text(json.dumps(cmp, indent=2), encoding="utf-8")
            for key, entry in cmp["metrics"].items():
                for d in entry["diff_vs_first"]:
                    table.append([suite, "csa - raw", str(d.get("n") or "-"), f"difference: {key}",
                                  f"{d['diff']:+.1f} [{d['ci'][0]:+.1f}, {d['ci'][1]:+.1f}]"])
    md = ["| suite | mode | n | metric | value [95% CI] |", "|---|---|---:|---|---|"]
    md += ["| " + " | ".join(r) + " |" for r in table]
    header = (f"machine: {platform.machine()}, {platform.system()}, CPU only; command: python bench/bench_eval.py "
              f"--limit-constructive {args.limit_constructive} --limit-strata {args.limit_strata} --limit-jbb "
              f"{args.limit_jbb} --csa-steps {args.csa_steps} --max-tokens {args.max_tokens}")
    (out / "summary.md").write_text(header + "\n\n" + "\n".join(md) + "\n", encoding="utf-8")
    print(header)
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
