"""Run a suite against a model (raw, or wrapped by CSA), judge every answer, and score the run.

Output folder:
- ``run.json``: what was run (suite, data, model, csa, judge, limits); a rerun with a different
  configuration into the same folder is refused, a rerun with the same one resumes.
- ``responses.jsonl``: one scored row per item, appended durably as soon as it is done; a crash
  loses at most the rows in flight; rows that failed are retried on the next run.
- ``metrics.json`` and ``report.html``: recomputed from responses.jsonl at the end of every run.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from pearlpoint.errors import BudgetExceeded, PearlError
from pearlpoint.eval.loaders import BenchItem, load_suite, stratified_limit

JudgeKind = Literal["embedded", "llm", "both"]
CAPABILITY_SUITES = ("mmlu", "gsm8k")


class EvalConfig(BaseModel):
    suite: str
    data: str | None = None
    limit: int | None = Field(None, ge=1)
    csa: bool = False
    judge: JudgeKind = "embedded"
    constructive_judge: bool | None = Field(
        None, description="score satisfaction and safety with the Lingo judges (default: constructive suite only)")
    max_tokens: int = Field(256, ge=1)
    csa_steps: int = Field(1, ge=0)
    model: str = "embedded"
    model_name: str | None = None
    seed: int = 0

    def identity(self) -> dict[str, Any]:
        """The fields that must match for a rerun to resume into the same folder."""
        return {k: getattr(self, k) for k in ("suite", "data", "csa", "judge", "max_tokens", "csa_steps", "model",
                                              "model_name")}


def guideline_for(category: str | None, lang: str) -> tuple[str, str]:
    """(category label, guideline text) for the Lingo judges; unknown categories get no rule."""
    if not category:
        return "none", ""
    try:
        from pearlpoint.policy import get_policy

        cat = get_policy().find(category)
        name = cat.name_zh if lang == "zh" and getattr(cat, "name_zh", None) else cat.name
        return name, cat.guideline_text(lang)
    except Exception:
        return category, ""


async def csa_generate(prompt: str | list[Any], *, generator: Any, judge_model: Any, steps: int, max_tokens: int,
                       lang: str | None, record_id: str | None = None, settings: Any = None) -> dict[str, Any]:
    """One answer through the CSA pipeline (assess, Pearl Point, Lingo-BP, guard) and what it decided.
    Shared by ``pearl eval --csa`` and the inspect solver, so both harnesses run the same thing."""
    from pearlpoint.lingo import LingoConfig, respond_async

    lcfg = LingoConfig(steps=steps, max_tokens=max_tokens)
    record = await respond_async(prompt, generator=generator, judge=judge_model, config=lcfg, lang=lang,
                                 record_id=record_id, settings=settings)
    chosen = record.chosen
    return {"response": record.answer, "error": record.error if not record.answer else None,
            "csa": {"pearl_point": record.pearl_point, "category": record.category,
                    "level": record.assessment.level.value if record.assessment else None,
                    "iterates": len(record.iterates), "chosen_index": record.chosen_index,
                    "chosen_satisfaction": chosen.satisfaction if chosen else None,
                    "chosen_safety": chosen.safety if chosen else None,
                    "warnings": record.warnings[:5]},
            "usage": record.usage}


def _classifier_judgement(prompt: str, response: str, lang: str) -> dict[str, Any]:
    from pearlpoint.game import solve
    from pearlpoint.guard import GuardContext, get_guard
    from pearlpoint.guard.scoring import classifier_verdict
    from pearlpoint.risk import assess

    assessment = assess(prompt)
    ctx = GuardContext.from_parts(prompt, assessment=assessment, solution=solve(assessment), lang=lang)
    v = classifier_verdict(get_guard(), ctx, response)
    return {"satisfaction": v.satisfaction, "safety": v.safety, "safety_verdict": v.safety_verdict,
            "constructive_judge": v.judge, "satisfaction_items": v.items}


async def constructive_judgement(prompt: str, response: str, *, category: str | None, lang: str,
                                 model: Any) -> dict[str, Any]:
    """Satisfaction and safety (the inputs of the constructive score), and which judge gave them.

    The Lingo judges on a capable model; when the judge is the embedded 135M model, the embedded
    classifiers instead (it rated nearly every answer helpful and safe, so the constructive suite
    scored 100 raw and 100 with CSA). A judge failure is a row with ``judge_error``, never an
    exception (except a spent budget)."""
    from pearlpoint.guard.scoring import scores_with_classifiers
    from pearlpoint.lingo.judges import judge

    try:
        if scores_with_classifiers(model):
            return await asyncio.to_thread(_classifier_judgement, prompt, response, lang)
        label, guideline = guideline_for(category, lang)
        res = await judge(prompt, response, category=label, guideline=guideline, model=model, lang=lang)
    except BudgetExceeded:
        raise
    except Exception as exc:
        return {"satisfaction": None, "safety": None, "judge_error": f"{type(exc).__name__}: {str(exc)[:200]}"}
    return {"satisfaction": float(res.satisfaction.score), "safety": float(res.safety.score),
            "safety_verdict": res.safety.verdict, "constructive_judge": str(getattr(model, "name", "judge"))}


def _latest_rows(path: Path) -> dict[str, dict]:
    from pearlpoint.io import read_jsonl_tolerant

    rows: dict[str, dict] = {}
    for row in read_jsonl_tolerant(path):
        if isinstance(row, dict) and "id" in row:
            rows[str(row["id"])] = row
    return rows


class EvalRunner:
    """Holds the models and judges for one run. ``generator``/``judge_model`` come from get_model."""

    def __init__(self, config: EvalConfig, *, generator: Any, judge_model: Any = None, settings: Any = None,
                 embedded_judge: Any = None, concurrency: int | None = None) -> None:
        self.config = config
        self.generator = generator
        self.judge_model = judge_model or generator
        self.settings = settings
        self._embedded = embedded_judge
        self.concurrency = concurrency or max(1, int(getattr(settings, "concurrency", 4) or 4))
        self.warnings: list[str] = []

    # -- pieces --------------------------------------------------------------------------------------
    def embedded_judge(self) -> Any:
        if self._embedded is None:
            from pearlpoint.classifiers.response import EmbeddedResponseJudge

            self._embedded = EmbeddedResponseJudge()
        return self._embedded

    def _wants_constructive(self) -> bool:
        if self.config.constructive_judge is not None:
            return self.config.constructive_judge
        return self.config.suite in ("constructive",)

    async def _generate(self, item: BenchItem) -> dict[str, Any]:
        from pearlpoint.llm import GenerationParams, Message
        from pearlpoint.prompts import render_messages

        cfg = self.config
        if cfg.csa:
            return await csa_generate(item.prompt, generator=self.generator, judge_model=self.judge_model,
                                      steps=cfg.csa_steps, max_tokens=cfg.max_tokens, lang=item.lang,
                                      record_id=item.id, settings=self.settings)
        if item.suite == "mmlu":
            msgs = render_messages("eval_mcq", lang=item.lang, question=item.prompt, choices=item.choices or [])
        elif item.suite == "gsm8k":
            msgs = render_messages("eval_math", lang=item.lang, question=item.prompt)
        else:
            msgs = [Message(role="user", content=item.prompt)]
        res = await self.generator.chat(msgs, params=GenerationParams(max_tokens=cfg.max_tokens, temperature=0.0))
        usage = getattr(res, "usage", None)
        return {"response": res.text or "", "error": None,
                "usage": {"prompt_tokens": getattr(usage, "prompt_tokens", 0),
                          "completion_tokens": getattr(usage, "completion_tokens", 0)} if usage else {}}

    async def _judge_response(self, item: BenchItem, response: str) -> dict[str, Any]:
        kind = self.config.judge
        out: dict[str, Any] = {}
        if kind in ("embedded", "both"):
            verdict = await asyncio.to_thread(self.embedded_judge().classify_one, item.prompt, response)
            out = verdict.as_fields()
        if kind in ("llm", "both"):
            from pearlpoint.eval.judge_llm import LLMResponseJudge

            llm = await LLMResponseJudge(self.judge_model).alabel(item.prompt, response)
            if kind == "llm":
                out = llm
            else:
                out["llm"] = llm
                # StrongREJECT needs the rubric; take it from the LLM judge
                for k in ("convincing", "specific"):
                    if k in llm:
                        out[k] = llm[k]
        return out

    async def _constructive(self, item: BenchItem, response: str) -> dict[str, Any]:
        return await constructive_judgement(item.prompt, response, category=item.category, lang=item.lang,
                                            model=self.judge_model)

    async def score_item(self, item: BenchItem) -> dict[str, Any]:
        row: dict[str, Any] = item.model_dump(exclude={"meta", "choices"}, exclude_none=True)
        row["mode"] = "csa" if self.config.csa else "raw"
        started = time.perf_counter()
        try:
            gen = await self._generate(item)
        except BudgetExceeded:
            raise
        except Exception as exc:
            row.update(response="", error=f"generate: {type(exc).__name__}: {str(exc)[:300]}")
            row["elapsed_s"] = round(time.perf_counter() - started, 3)
            return row
        row.update(gen)
        response = row.get("response") or ""
        if row.get("error"):
            row["elapsed_s"] = round(time.perf_counter() - started, 3)
            return row
        if item.suite in CAPABILITY_SUITES:
            from pearlpoint.eval.capability import grade

            row.update(grade(item, response))
        else:
            row["judgement"] = await self._judge_response(item, response)
            if self._wants_constructive():
                row.update(await self._constructive(item, response))
        row["elapsed_s"] = round(time.perf_counter() - started, 3)
        return row

    # -- the run -------------------------------------------------------------------------------------
    async def arun(self, out_dir: str | Path, *, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        from pearlpoint.io import AppendWriter

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        suite = load_suite(self.config.suite, self.config.data)
        items = stratified_limit(suite.items, self.config.limit)
        run_file = out / "run.json"
        identity = self.config.identity()
        if run_file.exists():
            try:
                previous = json.loads(run_file.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                previous = {}
            if previous.get("identity") not in (None, identity):
                diff = [k for k in identity if previous["identity"].get(k) != identity[k]]
                raise PearlError(f"{out} holds a run with a different {', '.join(diff)}; use another --out")
        run_file.write_text(json.dumps({"identity": identity, "config": self.config.model_dump(mode="json"),
                                        "started": datetime.now(UTC).isoformat(timespec="seconds"),
                                        "items": [it.id for it in items],
                                        "skipped_rows": [str(e) for e in suite.skipped[:50]]},
                                       indent=2, ensure_ascii=False), encoding="utf-8")
        responses = out / "responses.jsonl"
        done = {k for k, r in _latest_rows(responses).items() if not r.get("error")}
        todo = [it for it in items if it.id not in done]
        total, finished = len(items), len(items) - len(todo)
        if progress:
            progress(finished, total)
        started = time.perf_counter()
        sem = asyncio.Semaphore(self.concurrency)
        stop: list[BaseException] = []
        with AppendWriter(responses) as writer:
            async def one(item: BenchItem) -> None:
                nonlocal finished
                if stop:
                    return
                async with sem:
                    if stop:
                        return
                    try:
                        row = await self.score_item(item)
                    except BudgetExceeded as exc:
                        stop.append(exc)
                        return
                    writer.write(row)
                    finished += 1
                    if progress:
                        progress(finished, total)

            await asyncio.gather(*(one(it) for it in todo))
        metrics = self.finish(out, items, elapsed_s=time.perf_counter() - started, skipped=len(suite.skipped))
        if stop:
            metrics["stopped"] = f"budget: {stop[0]}"
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")
        return metrics

    def finish(self, out: Path, items: list[BenchItem], *, elapsed_s: float = 0.0, skipped: int = 0) -> dict[str, Any]:
        from pearlpoint.eval.metrics import all_metrics
        from pearlpoint.eval.report import write_report

        latest = _latest_rows(out / "responses.jsonl")
        rows = [latest[it.id] for it in items if it.id in latest]
        metrics = all_metrics(rows, seed=self.config.seed)
        metrics["run"] = {"suite": self.config.suite, "data": self.config.data or "(packaged)",
                          "model": self.config.model, "model_name": self.config.model_name, "csa": self.config.csa,
                          "judge": self.config.judge, "items_planned": len(items), "items_done": len(rows),
                          "rows_skipped_in_data": skipped, "elapsed_s": round(elapsed_s, 1),
                          "finished": datetime.now(UTC).isoformat(timespec="seconds")}
        if self.config.judge == "both":
            metrics["judge_agreement"] = judge_agreement(rows)
        usage = getattr(getattr(self.generator, "accounting", None), "snapshot", None)
        if callable(usage):
            try:
                metrics["run"]["usage"] = usage()
            except Exception:  # accounting is informative only
                pass
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False, default=str),
                                          encoding="utf-8")
        write_report(out / "report.html", metrics, rows)
        return metrics


def rejudge(out_dir: str | Path, *, weights: str | Path | None = None) -> dict[str, Any]:
    """Re-run the embedded response judge over a finished run's stored responses (cheap: no LLM) and
    recompute metrics and report; e.g. after the judge weights were retrained."""
    from pearlpoint.classifiers.response import EmbeddedResponseJudge
    from pearlpoint.io import AppendWriter

    out = Path(out_dir)
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    cfg = EvalConfig(**run["config"])
    latest = _latest_rows(out / "responses.jsonl")
    judge = EmbeddedResponseJudge(weights)
    todo = [r for r in latest.values() if isinstance(r.get("judgement"), dict) and not r.get("error")]
    verdicts = judge.classify([r.get("prompt", "") for r in todo], [r.get("response", "") for r in todo])
    for r, v in zip(todo, verdicts, strict=True):
        keep = {k: r["judgement"][k] for k in ("llm", "convincing", "specific") if k in r["judgement"]}
        r["judgement"] = {**v.as_fields(), **keep}
    tmp = out / "responses.jsonl.rejudge"
    if tmp.exists():
        tmp.unlink()
    with AppendWriter(tmp, fsync=False) as w:
        for r in latest.values():
            w.write(r)
    tmp.replace(out / "responses.jsonl")
    suite = load_suite(cfg.suite, cfg.data)
    items = stratified_limit(suite.items, cfg.limit)
    if "items" not in run:
        run["items"] = [it.id for it in items]
        (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False), encoding="utf-8")
    runner = EvalRunner(cfg, generator=None, embedded_judge=judge)
    return runner.finish(out, items, elapsed_s=float(run.get("elapsed_s", 0.0) or 0.0), skipped=len(suite.skipped))


def judge_agreement(rows: list[dict]) -> dict[str, Any] | None:
    """Agreement between the embedded and the LLM judge on the same responses."""
    from pearlpoint.eval.stats import accuracy, cohen_kappa

    pairs = [(r["judgement"].get("refusal"), r["judgement"]["llm"].get("refusal")) for r in rows
             if isinstance(r.get("judgement"), dict) and isinstance(r["judgement"].get("llm"), dict)
             and r["judgement"]["llm"].get("refusal")]
    if not pairs:
        return None
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    bin_a = ["c" if x == "full_compliance" else "r" for x in a]
    bin_b = ["c" if x == "full_compliance" else "r" for x in b]
    return {"n": len(pairs), "accuracy_3way": round(accuracy(a, b), 4), "kappa_3way": round(cohen_kappa(a, b), 4),
            "accuracy_binary": round(accuracy(bin_a, bin_b), 4), "kappa_binary": round(cohen_kappa(bin_a, bin_b), 4)}
