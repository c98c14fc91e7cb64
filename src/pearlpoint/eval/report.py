"""Self-contained HTML reports (tables + PNG plots embedded as data URIs) for one run or a comparison.

No external assets: a report can be mailed or attached to a paper's supplement as one file.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

from pearlpoint.errors import InputError

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}.small{color:#666;font-size:.9em}
pre{white-space:pre-wrap;background:#fafafa;border:1px solid #eee;padding:.4em;max-height:12em;overflow:auto}
.pos{color:#0a7d28}.neg{color:#b3261e}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def fmt_stat(s: dict | None, digits: int = 1) -> str:
    if not s or s.get("value") is None:
        return "-"
    lo, hi = s.get("ci", [None, None])
    ci = f" <span class=small>[{lo:.{digits}f}, {hi:.{digits}f}]</span>" if lo is not None else ""
    return f"{s['value']:.{digits}f}{ci}"


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_beta_sweep(series: dict[str, dict]) -> str:
    """series: label -> beta_sweep dict ({beta: {value, ci}})."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, sweep in series.items():
        betas = sorted(sweep, key=float)
        xs = [float(b) for b in betas]
        ys = [sweep[b]["value"] for b in betas]
        lo = [sweep[b]["ci"][0] for b in betas]
        hi = [sweep[b]["ci"][1] for b in betas]
        ax.plot(xs, ys, marker="o", label=label)
        ax.fill_between(xs, lo, hi, alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("beta (risk weight)")
    ax.set_ylabel("constructive score x100")
    ax.axvline(2.0, color="#999", lw=0.8, ls="--")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_bars(groups: dict[str, dict[str, dict]], ylabel: str, title: str) -> str:
    """groups: series label -> {x label: stat}; grouped bars with CI whiskers."""
    plt = _plt()
    import numpy as np

    xs = sorted({k for g in groups.values() for k in g})
    if not xs:
        return ""
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(xs) * max(1, len(groups))), 3.4))
    width = 0.8 / max(1, len(groups))
    for i, (label, g) in enumerate(groups.items()):
        vals = [g.get(x, {}).get("value") or 0.0 for x in xs]
        lo = [max(0.0, v - (g.get(x, {}).get("ci", [v, v])[0] or v)) for v, x in zip(vals, xs, strict=True)]
        hi = [max(0.0, (g.get(x, {}).get("ci", [v, v])[1] or v) - v) for v, x in zip(vals, xs, strict=True)]
        ax.bar(np.arange(len(xs)) + i * width, vals, width, yerr=[lo, hi], capsize=2, label=label)
    ax.set_xticks(np.arange(len(xs)) + width * (len(groups) - 1) / 2)
    ax.set_xticklabels(xs, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if len(groups) > 1:
        ax.legend(fontsize=8)
    return _png(fig)


def plot_refusal_style(series: dict[str, dict]) -> str:
    """series: label -> refusal_style metrics; stacked bars of the three classes."""
    plt = _plt()
    labels = list(series)
    if not labels:
        return ""
    classes = ("full_compliance", "partial_refusal", "full_refusal")
    colors = {"full_compliance": "#4c9a55", "partial_refusal": "#e0a526", "full_refusal": "#c0504d"}
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(labels) + 2), 3.2))
    bottom = [0.0] * len(labels)
    for c in classes:
        vals = [(series[lab]["shares"][c]["value"] or 0.0) for lab in labels]
        ax.bar(labels, vals, bottom=bottom, label=c.replace("_", " "), color=colors[c])
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("% of responses")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1, 1))
    return _png(fig)


def _table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    th = "".join(f'<th class="{"l" if i < left else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{c}</td>' for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def _stat_table(title: str, stats: dict[str, dict], digits: int = 1) -> str:
    rows = [[_e(k), fmt_stat(v, digits), str(v.get("n", ""))] for k, v in stats.items()]
    return _table([title, "value [95% CI]", "n"], rows)


def _headline_rows(metrics: dict) -> list[list[str]]:
    rows = []
    c = metrics.get("constructive")
    if c:
        rows.append(["constructive score (beta=2, x100)", fmt_stat(c["score"])])
        rows.append(["satisfaction (-1..1)", fmt_stat(c["satisfaction"], 3)])
        rows.append(["safety (0..1)", fmt_stat(c["safety"], 3)])
        if c.get("judges"):
            rows.append(["constructive judge", ", ".join(f"{k} ({v})" for k, v in sorted(c["judges"].items()))])
    j = metrics.get("jailbreak")
    if j:
        rows.append(["jailbreak score (100 - mean ASR over languages)", fmt_stat(j["score"])])
        rows.append(["attack success rate %", fmt_stat(j["asr"])])
    o = metrics.get("over_refusal")
    if o:
        if "safe_any_refusal_rate" in o:
            rows.append(["refusal rate on safe prompts %", fmt_stat(o["safe_any_refusal_rate"])])
        if "unsafe_compliance_rate" in o:
            rows.append(["compliance rate on unsafe prompts %", fmt_stat(o["unsafe_compliance_rate"])])
    s = metrics.get("strongreject")
    if s:
        rows.append(["StrongREJECT score (0..1, lower is safer)", fmt_stat(s["score"], 3)])
    cap = metrics.get("capability")
    if cap:
        rows.append(["capability accuracy %", fmt_stat(cap["accuracy"])])
    return rows


def render_run(metrics: dict, rows: list[dict], *, max_examples: int = 25) -> str:
    run = metrics.get("run", {})
    title = f"pearlpoint eval: {run.get('suite', '?')} - {run.get('model', '?')}{' + CSA' if run.get('csa') else ''}"
    parts = [f"<h1>{_e(title)}</h1>",
             f"<p class=small>{_e(run.get('items_done'))}/{_e(run.get('items_planned'))} items, judge "
             f"{_e(run.get('judge'))}, data {_e(run.get('data'))}, finished {_e(run.get('finished'))}; "
             f"errors: {metrics.get('n_errors', 0)}. Intervals are 95% percentile bootstrap over items.</p>"]
    parts.append("<h2>Headline</h2>" + _table(["metric", "value [95% CI]"], _headline_rows(metrics)))
    c = metrics.get("constructive")
    if c:
        parts.append("<h2>Constructive score</h2>")
        parts.append(plot_beta_sweep({run.get("model", "model"): c["beta_sweep"]}))
        parts.append(_stat_table("beta", c["beta_sweep"]))
        parts.append(_stat_table("level", c["by_level"]))
        parts.append(_stat_table("language", c["by_language"]))
        parts.append(_stat_table("category", c["by_category"]))
    j = metrics.get("jailbreak")
    if j:
        parts.append("<h2>Jailbreak robustness</h2><p class=small>" + _e(j["rule"]) + "</p>")
        parts.append(plot_bars({"ASR": j["asr_by_level"]}, "ASR %", "attack success by level"))
        parts.append(plot_bars({"ASR": j["asr_by_method"]}, "ASR %", "attack success by attack method"))
        parts.append(_stat_table("language", j["asr_by_language"]))
        parts.append(_stat_table("level", j["asr_by_level"]))
        parts.append(_stat_table("attack method", j["asr_by_method"]))
    o = metrics.get("over_refusal")
    if o:
        parts.append("<h2>Over-refusal</h2>" + _stat_table(
            "rate %", {k: v for k, v in o.items() if isinstance(v, dict)}))
    s = metrics.get("refusal_style")
    if s:
        parts.append("<h2>Refusal style</h2>" + plot_refusal_style({run.get("model", "model"): s}))
        parts.append(_stat_table("class (% of responses)", s["shares"]))
        parts.append(_table(["action", "count"], [[_e(k), str(v)] for k, v in s["actions"].items()]))
    sr = metrics.get("strongreject")
    if sr:
        parts.append("<h2>StrongREJECT</h2>" + _stat_table("category", {"all": sr["score"], **sr["by_category"]}, 3))
    cap = metrics.get("capability")
    if cap:
        parts.append("<h2>General capability</h2>" + _stat_table("subject", {"all": cap["accuracy"],
                                                                          **cap["by_category"]}))
    ja = metrics.get("judge_agreement")
    if ja:
        parts.append("<h2>Judge agreement (embedded vs LLM)</h2>" + _table(
            ["n", "accuracy 3-way", "kappa 3-way", "accuracy binary", "kappa binary"],
            [[str(ja["n"]), f"{ja['accuracy_3way']:.3f}", f"{ja['kappa_3way']:.3f}", f"{ja['accuracy_binary']:.3f}",
              f"{ja['kappa_binary']:.3f}"]], left=0))
    if rows:
        ex = []
        for r in rows[:max_examples]:
            j = r.get("judgement") or {}
            score = ""
            if r.get("satisfaction") is not None:
                score = f"sat {r['satisfaction']:+.1f} / safe {r['safety']:.1f}"
            ex.append([_e(r.get("id")), f"<pre>{_e(r.get('prompt', '')[:600])}</pre>",
                       f"<pre>{_e((r.get('response') or r.get('error') or '')[:1200])}</pre>",
                       _e(j.get("refusal", r.get("predicted", ""))), _e(score)])
        parts.append(f"<h2>Responses (first {len(ex)})</h2>" + _table(["id", "prompt", "response", "judged", "scores"],
                                                                     ex, left=5))
    return f"<!doctype html><html><head><meta charset=utf-8><title>{_e(title)}</title><style>{CSS}</style></head>" \
           f"<body>{''.join(parts)}</body></html>"


def write_report(path: str | Path, metrics: dict, rows: list[dict]) -> Path:
    path = Path(path)
    path.write_text(render_run(metrics, rows), encoding="utf-8")
    return path


# -- comparison ---------------------------------------------------------------------------------------

def load_run(directory: str | Path) -> tuple[dict, list[dict]]:
    from pearlpoint.io import read_jsonl_tolerant

    d = Path(directory)
    mfile = d / "metrics.json"
    if not mfile.exists():
        raise InputError("no metrics.json here; run `pearl eval ... --out DIR` first", path=d)
    try:
        metrics = json.loads(mfile.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=mfile, line=exc.lineno) from None
    latest: dict[str, dict] = {}
    for r in read_jsonl_tolerant(d / "responses.jsonl"):
        if isinstance(r, dict) and "id" in r:
            latest[str(r["id"])] = r
    try:  # only the items of the run's current plan (a folder may hold rows of an earlier, larger --limit)
        planned = json.loads((d / "run.json").read_text(encoding="utf-8")).get("items")
    except (OSError, json.JSONDecodeError):
        planned = None
    if planned:
        return metrics, [latest[i] for i in planned if i in latest]
    return metrics, list(latest.values())


def _item_values(rows: list[dict], metric: str) -> dict[str, float]:
    from pearlpoint.eval.metrics import HEADLINE_BETA, attack_success, normalised_constructive

    out: dict[str, float] = {}
    for r in rows:
        if r.get("error"):
            continue
        v: float | None = None
        if metric == "constructive" and r.get("satisfaction") is not None and r.get("safety") is not None:
            v = 100 * normalised_constructive(r["satisfaction"], r["safety"], HEADLINE_BETA)
        elif metric == "asr" and r.get("label") == "unsafe":
            s = attack_success(r)
            v = None if s is None else 100 * s
        elif metric == "safe_refusal" and r.get("label") == "safe" and (r.get("judgement") or {}).get("refusal"):
            v = 0.0 if r["judgement"]["refusal"] == "full_compliance" else 100.0
        elif metric == "capability" and r.get("correct") is not None:
            v = 100.0 if r["correct"] else 0.0
        if v is not None:
            out[str(r["id"])] = v
    return out


COMPARE_METRICS = {"constructive": "constructive score (beta=2, x100)", "asr": "attack success rate %",
                   "safe_refusal": "refusal rate on safe prompts %", "capability": "capability accuracy %"}


def compare_runs(dirs: list[str | Path], *, seed: int = 0) -> dict[str, Any]:
    """Per metric: each run's mean [CI], and each run minus the first, with a bootstrap CI of the
    difference (paired over shared item ids when the runs scored the same items)."""
    from pearlpoint.eval.metrics import summarise
    from pearlpoint.eval.stats import bootstrap_diff_ci

    runs = []
    for d in dirs:
        metrics, rows = load_run(d)
        run = metrics.get("run", {})
        label = f"{Path(d).name} ({run.get('model', '?')}{'+csa' if run.get('csa') else ''})"
        runs.append({"dir": str(d), "label": label, "metrics": metrics, "rows": rows})
    table: dict[str, Any] = {}
    for key in COMPARE_METRICS:
        vals = [_item_values(r["rows"], key) for r in runs]
        if not any(vals):
            continue
        entry = {"runs": [summarise(v.values(), seed=seed) for v in vals], "diff_vs_first": []}
        base = vals[0]
        for other in vals[1:]:
            shared = sorted(set(base) & set(other))
            if shared and len(shared) >= 0.8 * max(len(base), len(other)):
                d, lo, hi = bootstrap_diff_ci([base[i] for i in shared], [other[i] for i in shared], paired=True,
                                              seed=seed)
                paired = True
            else:
                d, lo, hi = bootstrap_diff_ci(list(base.values()), list(other.values()), seed=seed)
                paired = False
            entry["diff_vs_first"].append({"diff": round(d, 4), "ci": [round(lo, 4), round(hi, 4)], "paired": paired,
                                           "n": len(shared) if paired else None})
        table[key] = entry
    return {"runs": [{"dir": r["dir"], "label": r["label"], "run": r["metrics"].get("run", {})} for r in runs],
            "metrics": table}


def render_compare(dirs: list[str | Path], *, seed: int = 0) -> tuple[str, dict[str, Any]]:
    cmp = compare_runs(dirs, seed=seed)
    runs = cmp["runs"]
    labels = [r["label"] for r in runs]
    parts = ["<h1>pearlpoint: run comparison</h1>",
             "<p class=small>Differences are each run minus the first; 95% bootstrap CIs, paired over the same "
             "items when the runs share them. A difference whose interval excludes 0 is marked.</p>"]
    headers = ["metric", *[_e(lab) for lab in labels], *[f"&Delta; {_e(lab)}" for lab in labels[1:]]]
    rows = []
    for key, entry in cmp["metrics"].items():
        cells = [COMPARE_METRICS[key], *[fmt_stat(s) for s in entry["runs"]]]
        for d in entry["diff_vs_first"]:
            lo, hi = d["ci"]
            cls = "pos" if lo > 0 else ("neg" if hi < 0 else "")
            cells.append(f'<span class="{cls}">{d["diff"]:+.1f}</span> <span class=small>[{lo:+.1f}, {hi:+.1f}]</span>')
        rows.append(cells)
    parts.append(_table(headers, rows))
    loaded = [load_run(r["dir"])[0] for r in runs]
    sweeps = {lab: m["constructive"]["beta_sweep"] for lab, m in zip(labels, loaded, strict=True) if m.get("constructive")}
    if sweeps:
        parts.append("<h2>Constructive score over beta</h2>" + plot_beta_sweep(sweeps))
    lv = {lab: m["jailbreak"]["asr_by_level"] for lab, m in zip(labels, loaded, strict=True) if m.get("jailbreak")}
    if lv:
        parts.append("<h2>Attack success by level</h2>" + plot_bars(lv, "ASR %", "attack success by level"))
    me = {lab: m["jailbreak"]["asr_by_method"] for lab, m in zip(labels, loaded, strict=True) if m.get("jailbreak")}
    if me:
        parts.append(plot_bars(me, "ASR %", "attack success by method"))
    st = {lab: m["refusal_style"] for lab, m in zip(labels, loaded, strict=True) if m.get("refusal_style")}
    if st:
        parts.append("<h2>Refusal style</h2>" + plot_refusal_style(st))
    head = []
    for lab, m in zip(labels, loaded, strict=True):
        for name, value in _headline_rows(m):
            head.append([_e(lab), name, value])
    parts.append("<h2>Headline numbers per run</h2>" + _table(["run", "metric", "value [95% CI]"], head, left=2))
    html_text = f"<!doctype html><html><head><meta charset=utf-8><title>pearlpoint comparison</title>" \
                f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>"
    return html_text, cmp
