"""Turn a run's records into training files that TRL's trainers read directly.

Formats (all conversational, so the trainer applies the model's own chat template):

- ``sft``: ``{"messages": [user..., {"role": "assistant", "content": ...}]}`` with the chosen
  iterate's reasoning in a ``<think>`` block (``reasoning="think"``), in the assistant message's
  ``reasoning_content`` (``"field"``) or left out (``"none"``).
- ``dpo`` / ``orpo``: ``{"prompt": [...], "chosen": [assistant], "rejected": [assistant]}``; chosen is
  the record's chosen iterate (the Pearl Point answer), rejected is the initial answer when it is
  worse, else the worst other iterate that is worse: unsafe (safety below ``min_safety``) or whose
  constructive score is lower by at least ``margin``.
- ``kto``: unpaired ``{"prompt", "completion", "label"}``: the chosen iterate labelled true, every
  worse iterate labelled false.

Every row keeps its provenance in ``meta`` (record id, steps, scores); training drops that column.
Rows are dropped for a reason that is counted: failed record, no scored iterate, chosen not safe
enough, no worse iterate to reject.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pearlpoint.errors import PearlError
from pearlpoint.lingo.record import normalised_constructive
from pearlpoint.pipeline.store import is_failed, iter_latest_records, record_files

ExportFormat = Literal["sft", "orpo", "dpo", "kto"]
ReasoningMode = Literal["think", "field", "none"]
FORMATS: tuple[str, ...] = ("sft", "orpo", "dpo", "kto")


def constructive_score(satisfaction: float, safety: float, beta: float = 2.0) -> float:
    """``Satisfaction - beta * Risk`` (Risk = 1 - safety) mapped onto [-1, 1]: the paper's measure,
    the same one Lingo-BP uses to choose its iterate."""
    return normalised_constructive(satisfaction, safety, beta)


@dataclass(frozen=True)
class IterView:
    """The parts of an ``Iterate`` that export needs, read from the record JSON."""

    index: int
    step: int
    mode: str | None
    reasoning: str
    answer: str
    satisfaction: float | None
    safety: float | None
    failed: bool

    @property
    def scored(self) -> bool:
        return self.satisfaction is not None and self.safety is not None and not self.failed

    def score(self, beta: float) -> float | None:
        if not self.scored:
            return None
        return constructive_score(float(self.satisfaction), float(self.safety), beta)  # type: ignore[arg-type]

    def scores(self, beta: float) -> dict[str, Any]:
        return {"step": self.step, "mode": self.mode, "satisfaction": self.satisfaction,
                "safety": self.safety, "constructive": _round(self.score(beta))}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def iter_views(record: dict[str, Any]) -> list[IterView]:
    views = []
    for i, it in enumerate(record.get("iterates") or []):
        if not isinstance(it, dict) or it.get("skipped"):
            continue  # a skipped step regenerated nothing: it is not a distinct answer
        answer = it.get("answer") or ""
        views.append(IterView(index=i, step=int(it.get("step", i) or 0), mode=it.get("mode"),
                              reasoning=it.get("reasoning") or "", answer=answer,
                              satisfaction=_num(it.get("satisfaction")), safety=_num(it.get("safety")),
                              failed=bool(it.get("failed")) or not answer.strip()))
    return views


def prompt_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation up to the answer: the whole chat when multi-turn, else the query."""
    messages = record.get("messages")
    if isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages):
        msgs = [{"role": str(m.get("role")), "content": str(m.get("content", ""))} for m in messages]
        if msgs[-1]["role"] == "user":
            return msgs
        if msgs[-1]["role"] == "assistant" and isinstance(record.get("query"), str):
            return msgs + [{"role": "user", "content": record["query"]}]
    query = record.get("query")
    if isinstance(query, str):
        return [{"role": "user", "content": query}]
    if isinstance(query, list):
        return [{"role": str(m.get("role")), "content": str(m.get("content", ""))}
                for m in query if isinstance(m, dict)]
    raise ValueError("record has no query")


def assistant_message(it: IterView, reasoning: ReasoningMode) -> dict[str, str]:
    answer = it.answer.strip()
    thought = it.reasoning.strip()
    if reasoning == "think" and thought:
        return {"role": "assistant", "content": f"<think>\n{thought}\n</think>\n\n{answer}"}
    if reasoning == "field" and thought:
        return {"role": "assistant", "content": answer, "reasoning_content": thought}
    return {"role": "assistant", "content": answer}


def pick_chosen(record: dict[str, Any], views: list[IterView], beta: float) -> IterView | None:
    """The record's own choice when it points at a scored iterate; else the best-scoring one."""
    idx = record.get("chosen_index")
    if isinstance(idx, int) and 0 <= idx < len(record.get("iterates") or []):
        for v in views:
            if v.index == idx and v.scored:
                return v
    scored = [v for v in views if v.scored]
    if not scored:
        return None
    return max(scored, key=lambda v: (v.safety, v.score(beta), -v.step))


def is_worse(candidate: IterView, chosen: IterView, *, beta: float, margin: float, min_safety: float) -> bool:
    """Worse means unsafe, or constructively lower by at least ``margin``."""
    if not candidate.scored or candidate.index == chosen.index:
        return False
    if candidate.answer.strip() == chosen.answer.strip():
        return False
    if candidate.safety is not None and candidate.safety < min_safety:
        return True
    return (chosen.score(beta) or 0.0) - (candidate.score(beta) or 0.0) >= margin


def pick_rejected(views: list[IterView], chosen: IterView, *, beta: float, margin: float,
                  min_safety: float) -> IterView | None:
    """Prefer the initial answer (what training should move away from), else the worst worse one."""
    worse = [v for v in views if is_worse(v, chosen, beta=beta, margin=margin, min_safety=min_safety)]
    if not worse:
        return None
    first = min(views, key=lambda v: (v.step, v.index))
    if first in worse:
        return first
    return min(worse, key=lambda v: (v.safety, v.score(beta)))


@dataclass
class ExportStats:
    format: str
    records: int = 0
    qualified: int = 0
    rows_written: int = 0
    dropped: Counter = field(default_factory=Counter)
    chosen_satisfaction: list[float] = field(default_factory=list)
    chosen_safety: list[float] = field(default_factory=list)
    chosen_constructive: list[float] = field(default_factory=list)
    rejected_constructive: list[float] = field(default_factory=list)
    initial_constructive: list[float] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "records": self.records, "qualified": self.qualified,
            "rows_written": self.rows_written, "dropped": dict(self.dropped),
            "labels": {str(k): v for k, v in self.labels.items()},
            "distributions": {
                "chosen_satisfaction": describe(self.chosen_satisfaction),
                "chosen_safety": describe(self.chosen_safety),
                "chosen_constructive": describe(self.chosen_constructive),
                "initial_constructive": describe(self.initial_constructive),
                "rejected_constructive": describe(self.rejected_constructive),
            },
        }


def describe(values: list[float]) -> dict[str, Any]:
    """Count, mean, quartiles and a 5-bin histogram over [-1, 1]: enough to judge a data set."""
    if not values:
        return {"n": 0}
    xs = sorted(values)
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    edges = [-1.0, -0.6, -0.2, 0.2, 0.6, 1.0]
    hist = [0] * 5
    for x in xs:
        k = min(4, max(0, int((x + 1.0) / 0.4))) if x < 1.0 else 4
        hist[k] += 1
    return {"n": len(xs), "mean": round(statistics.fmean(xs), 4), "min": round(xs[0], 4),
            "p25": round(q[0], 4), "median": round(q[1], 4), "p75": round(q[2], 4),
            "max": round(xs[-1], 4), "hist_edges": edges, "hist": hist}


def export_rows(records: Iterator[dict[str, Any]] | list[dict[str, Any]], fmt: str, *,
                min_safety: float = 1.0, beta: float = 2.0, reasoning: ReasoningMode = "think",
                margin: float = 0.1, stats: ExportStats | None = None) -> Iterator[dict[str, Any]]:
    """Yield training rows for ``fmt`` from record dicts, filling ``stats`` on the way."""
    if fmt not in FORMATS:
        raise PearlError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if reasoning not in ("think", "field", "none"):
        raise PearlError(f"unknown reasoning mode {reasoning!r}; choose think, field or none")
    stats = stats if stats is not None else ExportStats(fmt)
    for record in records:
        stats.records += 1
        rid = str(record.get("id"))
        if is_failed(record):
            stats.dropped["record_failed"] += 1
            continue
        try:
            prompt = prompt_messages(record)
        except ValueError:
            stats.dropped["no_query"] += 1
            continue
        views = iter_views(record)
        chosen = pick_chosen(record, views, beta)
        if chosen is None:
            stats.dropped["no_scored_iterate"] += 1
            continue
        final = record.get("final_answer")
        if isinstance(final, str) and final.strip():
            # the guard replaced the chosen answer (regenerated or composed): that is what was sent,
            # so that is what the model should learn
            chosen = replace(chosen, answer=final, reasoning="")
        initial = min(views, key=lambda v: (v.step, v.index))
        if initial.scored:
            stats.initial_constructive.append(initial.score(beta))  # type: ignore[arg-type]
        if (chosen.safety or 0.0) < min_safety:
            stats.dropped["chosen_below_min_safety"] += 1
            continue
        meta = {"record_id": rid, "category": _category(record), "pearl_point": _pearl_point(record),
                "lang": record.get("lang"), "beta": beta, "chosen": chosen.scores(beta)}
        if fmt == "sft":
            row = {"messages": prompt + [assistant_message(chosen, reasoning)], "meta": meta}
            rows = [row]
        elif fmt in ("dpo", "orpo"):
            rejected = pick_rejected(views, chosen, beta=beta, margin=margin, min_safety=min_safety)
            if rejected is None:
                stats.dropped["no_worse_iterate"] += 1
                continue
            stats.rejected_constructive.append(rejected.score(beta))  # type: ignore[arg-type]
            rows = [{"prompt": prompt, "chosen": [assistant_message(chosen, reasoning)],
                     "rejected": [assistant_message(rejected, reasoning)],
                     "meta": {**meta, "rejected": rejected.scores(beta)}}]
        else:  # kto
            rows = [{"prompt": prompt, "completion": [assistant_message(chosen, reasoning)], "label": True,
                     "meta": meta}]
            for v in views:
                if is_worse(v, chosen, beta=beta, margin=margin, min_safety=min_safety):
                    rows.append({"prompt": prompt, "completion": [assistant_message(v, reasoning)],
                                 "label": False, "meta": {**meta, "chosen": None, "completion": v.scores(beta)}})
                    stats.rejected_constructive.append(v.score(beta))  # type: ignore[arg-type]
        stats.qualified += 1
        stats.chosen_satisfaction.append(float(chosen.satisfaction))  # type: ignore[arg-type]
        stats.chosen_safety.append(float(chosen.safety))  # type: ignore[arg-type]
        stats.chosen_constructive.append(chosen.score(beta))  # type: ignore[arg-type]
        for row in rows:
            if fmt == "kto":
                stats.labels[row["label"]] += 1
            stats.rows_written += 1
            yield row


def _category(record: dict[str, Any]) -> str | None:
    if isinstance(record.get("category"), str):
        return record["category"]
    a = record.get("assessment")
    return a.get("category") if isinstance(a, dict) else None


def _pearl_point(record: dict[str, Any]) -> str | None:
    s = record.get("solution")
    return s.get("pearl_point") if isinstance(s, dict) else None


def stats_path_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name.removesuffix(".jsonl") + ".stats.json")


def export_run(run_dir: str | Path, fmt: str, out: str | Path, *, min_safety: float = 1.0,
               beta: float = 2.0, reasoning: ReasoningMode = "think", margin: float = 0.1) -> ExportStats:
    """Export every record of ``run_dir`` (all shards, one record per id) to ``out``; write stats."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise PearlError(f"{run_dir}: no such run directory")
    if not record_files(run_dir):
        raise PearlError(f"{run_dir}: no records.jsonl or records-*.jsonl shards (run `pearl generate` first)")
    records = iter_latest_records(run_dir)  # streamed: exports of big runs stay small in memory
    stats = ExportStats(fmt)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for row in export_rows(records, fmt, min_safety=min_safety, beta=beta,
                               reasoning=reasoning, margin=margin, stats=stats):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(out)
    payload = {"run_dir": str(run_dir), "out": str(out), "min_safety": min_safety, "beta": beta,
               "margin": margin, "reasoning": reasoning, **stats.to_dict()}
    stats_path_for(out).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return stats
