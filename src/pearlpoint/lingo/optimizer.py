"""Lingo-BP for one query: assess -> solve -> seed -> (forward, judge) -> [backward, forward, judge]*.

Call budget: 2 calls to initialise (forward + combined judges), 3 per round (backward, forward,
judges), so 8 for two rounds; fewer with early stop, with an adaptive schedule that skips a mode
whose objective is already met, or when the backward step proposes nothing new. Every call is
counted with ``track_usage`` (cache hits separately) and stored in ``Record.usage``.

Faults never lose the history: a step whose forward, judge or backward answer cannot be parsed is
recorded as failed and the loop goes on from the last good iterate; a spent run-wide budget stops
the loop and the record keeps what was done.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pearlpoint.chain.forward import forward
from pearlpoint.chain.schema import SafetyChain
from pearlpoint.chain.seed import category_label, guideline_for, seed_chain
from pearlpoint.errors import BudgetExceeded, PearlError
from pearlpoint.lingo.backward import backward
from pearlpoint.lingo.config import LingoConfig
from pearlpoint.lingo.judges import JudgeResult, judge
from pearlpoint.lingo.record import Iterate, Record
from pearlpoint.lingo.select import choose_best
from pearlpoint.risk.schema import Intent, RiskAssessment, RiskLevel, RiskSignal, UserTypePosterior

CALLS_PER_ROUND = 3


def _split_conversation(query: Any) -> tuple[str, list[dict[str, str]], list[dict[str, str]] | None]:
    """(latest user text, earlier turns, whole conversation or None for a single string)."""
    from pearlpoint.llm import as_messages

    if isinstance(query, str):
        return query, [], None
    try:
        msgs = as_messages(query)
    except Exception as exc:
        raise PearlError(f"query: expected a string or a list of chat messages ({exc})") from exc
    if not msgs:
        raise PearlError("query: the conversation is empty")
    last_user = max((i for i, m in enumerate(msgs) if m.role == "user"), default=None)
    if last_user is None:
        raise PearlError("query: the conversation has no user message")
    convo = [m.model_dump() for m in msgs]
    return msgs[last_user].content, convo[:last_user], convo


def record_id_for(query_text: str, history: list[dict[str, str]]) -> str:
    """Stable id from the conversation, so a rerun of the same query gets the same id (resume)."""
    h = hashlib.sha1()
    for m in history:
        h.update(f"{m['role']}\x00{m['content']}\x01".encode())
    h.update(query_text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:16]


def _fallback_assessment(lang: str, reason: str) -> RiskAssessment:
    """Used only when no assessor can run: cautious (R1) but not alarmist, and it says so."""
    return RiskAssessment(category="none", level=RiskLevel.R1, intent=Intent.risk_inquiry, severity=1,
                          harmful_probability=0.5, confidence=0.0, language=lang, assessor="fallback",
                          user_types=UserTypePosterior(benign=0.8, vulnerable=0.15, malicious=0.05),
                          signals=[RiskSignal(name="assessor_unavailable", detail=reason[:300])])


async def _assess(assessor: Any, conversation: Any, settings: Any, lang: str,
                  warnings: list[str], judge_model: Any = None) -> RiskAssessment:
    if isinstance(assessor, RiskAssessment):
        return assessor
    try:
        if assessor is None or isinstance(assessor, str):
            from pearlpoint.risk import get_assessor

            kind = assessor or getattr(settings, "assessor", "embedded")
            # the llm and cascade assessors reuse the judge model (one endpoint, one budget)
            assessor = get_assessor(kind, settings=settings, model=judge_model if kind != "embedded" else None)
        if hasattr(assessor, "aassess"):
            return await assessor.aassess(conversation)
        import asyncio

        return await asyncio.to_thread(assessor.assess, conversation)
    except BudgetExceeded:
        raise
    except Exception as exc:  # an assessor that is missing or broken must not kill the answer
        warnings.append(f"assessor unavailable, used a cautious default: {type(exc).__name__}: {exc}")
        return _fallback_assessment(lang, f"{type(exc).__name__}: {exc}")


def _solve(assessment: RiskAssessment, config: LingoConfig, warnings: list[str]) -> Any:
    try:
        from pearlpoint.game import solve

        kw: dict[str, Any] = {"beta": config.beta}
        if config.payoffs_file is not None:
            kw["payoffs"] = config.payoffs_file
        return solve(assessment, **kw)
    except Exception as exc:
        warnings.append(f"game solver unavailable, seeded from the risk level: {type(exc).__name__}: {exc}")
        return None


def _policy(config: LingoConfig, settings: Any, warnings: list[str]) -> Any:
    try:
        from pearlpoint.policy import get_policy

        return get_policy(config.policy_file or getattr(settings, "policy_file", None))
    except PearlError:
        raise  # a user's policy file that is wrong must be reported, not ignored
    except Exception as exc:
        warnings.append(f"policy unavailable, no category guideline: {type(exc).__name__}: {exc}")
        return None


class _Run:
    """State of one query's optimisation (kept small: the loop reads like the method)."""

    def __init__(self, *, query: str, history: list[dict[str, str]], lang: str, generator: Any, judge_model: Any,
                 config: LingoConfig, category: str, guideline: str, usage: Any) -> None:
        self.query, self.history, self.lang = query, history, lang
        self.generator, self.judge_model, self.config = generator, judge_model, config
        self.category, self.guideline, self.usage = category, guideline, usage
        check = config.safety_check
        if check == "auto":
            check = "embedded" if str(getattr(judge_model, "name", "")).startswith("embedded") else "off"
        self.safety_check = check
        self.guard: Any = None
        self.guard_ctx: Any = None  # set by respond_async once the decision is known

    async def guard_feedback(self, verdict: JudgeResult, answer: str, chain: SafetyChain) -> JudgeResult:
        """The answer checker's failed reasons, folded into the judges' verdict (see apply_guard_check)."""
        if self.guard is None or self.guard_ctx is None:
            return verdict
        import asyncio
        import dataclasses

        from pearlpoint.chain.steering import steering_message
        from pearlpoint.lingo.judges import apply_guard_check

        ctx = dataclasses.replace(self.guard_ctx, chain=chain, steering=steering_message(chain, self.lang))
        try:
            check = await asyncio.to_thread(self.guard.check, ctx, answer)
        except Exception as exc:  # noqa: BLE001 - the checker is extra evidence, never a reason to fail
            return verdict.model_copy(update={"checks": {**(verdict.checks or {}), "guard_error": str(exc)[:200]}})
        return apply_guard_check(verdict, check, self.lang)

    def calls_left(self) -> int | None:
        if self.config.max_calls is None:
            return None
        return self.config.max_calls - self.usage.calls

    async def evaluate(self, chain: SafetyChain, *, step: int, mode: str, scheduled: str | None,
                       backward_info: dict[str, Any] | None = None) -> Iterate:
        """Forward + judges for one chain; failures are recorded on the iterate, never raised."""
        from pearlpoint.llm import track_usage

        it = Iterate(step=step, mode=mode, scheduled_mode=scheduled, chain=chain, backward=backward_info)
        with track_usage() as u:
            try:
                out = await forward(chain, self.query, model=self.generator, lang=self.lang, history=self.history,
                                    max_tokens=self.config.max_tokens, temperature=self.config.temperature,
                                    max_attempts=self.config.max_attempts, fmt=self.config.forward_format)
                it.reasoning, it.answer = out.reasoning, out.answer
            except BudgetExceeded:
                raise
            except Exception as exc:  # one bad answer must not kill a batch: record it and go on
                it.failed, it.error = True, f"forward: {type(exc).__name__}: {exc}"
            if not it.failed:
                left = self.calls_left()
                if left is not None and left <= 0:
                    it.failed, it.error = True, "judge: per-query call budget spent before judging"
                else:
                    try:
                        verdict = await judge(self.query, it.answer, category=self.category,
                                              guideline=self.guideline, model=self.judge_model, lang=self.lang,
                                              mode=self.config.judge_mode, history=self.history,
                                              max_tokens=self.config.judge_max_tokens,
                                              max_attempts=self.config.max_attempts,
                                              max_chars=self.config.max_prompt_chars,
                                              safety_check=self.safety_check)
                        verdict = await self.guard_feedback(verdict, it.answer, chain)
                        it.judges = verdict.model_dump(mode="json")
                        it.satisfaction, it.safety = verdict.satisfaction.score, verdict.safety.score
                    except BudgetExceeded:
                        raise
                    except Exception as exc:
                        it.failed, it.error = True, f"judge: {type(exc).__name__}: {exc}"
        it.usage = u.snapshot()
        return it


def _effective_mode(scheduled: str, base: Iterate, adaptive: bool) -> str:
    """With ``adaptive``, do not spend a step on an objective that is already met."""
    if not adaptive or scheduled == "both":
        return scheduled
    if scheduled == "developer" and base.safety == 1.0 and (base.satisfaction or 0) < 1.0:
        return "user"
    if scheduled == "user" and base.satisfaction == 1.0 and (base.safety or 0) < 1.0:
        return "developer"
    return scheduled


async def respond_async(query: str | list[Any], *, generator: Any = None, judge: Any = None,  # noqa: F811
                        assessor: Any = None, config: LingoConfig | None = None, lang: str | None = None,
                        record_id: str | None = None, assessment: RiskAssessment | None = None,
                        solution: Any = None, settings: Any = None) -> Record:
    """Answer one query (a string, or a conversation as a list of messages) with Lingo-BP.

    ``generator``/``judge``: models from ``get_model`` (default: from the settings, i.e. the embedded
    model). ``assessor``: an assessor object, a kind name, or a ready ``RiskAssessment`` (default: the
    settings' kind, falling back to a cautious default when it cannot run). A precomputed
    ``assessment``/``solution`` skips those stages (the pipeline and the proxy reuse them).
    """
    from pearlpoint.llm import get_model, track_usage
    from pearlpoint.prompts import detect_language

    judge_arg = judge
    config = config or LingoConfig()
    query_text, history, conversation = _split_conversation(query)
    if not query_text.strip():
        raise PearlError("query: the user message is empty")
    if settings is None:
        from pearlpoint.config import get_settings

        settings = get_settings()
    if lang is None:
        setting_lang = getattr(settings, "lang", "auto")
        lang = setting_lang if setting_lang in ("en", "zh") else detect_language(query_text)
    lang = "zh" if lang == "zh" else "en"
    generator = generator or get_model(None, settings=settings)
    judge_model = judge_arg or get_model(None, settings=settings, role="judge")
    warnings: list[str] = []
    started = time.perf_counter()
    record = Record(id=record_id or record_id_for(query_text, history), query=query_text, messages=conversation,
                    lang=lang, config=config.model_dump(mode="json"),
                    generator=getattr(generator, "name", ""), judge_model=getattr(judge_model, "name", ""))
    record.warnings = warnings  # the same list: stages append to it as they go
    run: _Run | None = None
    with track_usage() as usage:
        try:
            if assessment is None:
                assessment = await _assess(assessor, conversation or query_text, settings, lang, warnings, judge_model)
            record.assessment = assessment
            if solution is None:
                solution = _solve(assessment, config, warnings)
            record.solution = Record._solution(solution)
            policy = _policy(config, settings, warnings)
            record.category = assessment.category
            record.guideline = guideline_for(assessment.category, policy, lang) if policy is not None else ""
            run = _Run(query=query_text, history=history, lang=lang, generator=generator, judge_model=judge_model,
                       config=config, category=category_label(assessment.category, policy, lang),
                       guideline=record.guideline, usage=usage)
            chain = seed_chain(assessment, solution, policy, lang)
            if config.guard:
                from pearlpoint.guard import GuardContext, get_guard

                run.guard = get_guard(config.guard_file)
                run.guard_ctx = GuardContext.from_parts(query_text, assessment=assessment, solution=solution,
                                                        chain=chain, lang=lang)
            record.iterates.append(await run.evaluate(chain, step=0, mode="seed", scheduled=None))
            await _optimise(run, record)
        except BudgetExceeded as exc:
            record.error = f"budget: {exc}"
        finally:
            record.chosen_index = choose_best(record.iterates, config.beta)
            record.usage = usage.snapshot()
            record.elapsed_s = round(time.perf_counter() - started, 3)
    if run is not None and run.guard is not None and record.error is None:
        with track_usage() as guard_usage:
            await _guard_chosen(run, record)
        extra = guard_usage.snapshot()
        record.usage = {k: record.usage.get(k, 0) + extra.get(k, 0) for k in set(record.usage) | set(extra)}
        record.elapsed_s = round(time.perf_counter() - started, 3)
    if record.error is None and record.chosen is None and not record.final_answer:
        failures = "; ".join(it.error or "" for it in record.iterates if it.error)
        record.error = f"no usable answer: {failures}" if failures else "no usable answer"
    return record


async def _guard_chosen(run: _Run, record: Record) -> None:
    """The guard stage on the chosen answer: what leaves Lingo-BP obeys the same policy as the proxy.
    On a failure the generator gets one re-steered try, then the composer writes the reply."""
    import dataclasses

    from pearlpoint.chain.steering import steering_message
    from pearlpoint.llm import GenerationParams, Message

    chosen = record.chosen
    chain = chosen.chain if chosen is not None else run.guard_ctx.chain
    steering = steering_message(chain, run.lang)
    ctx = dataclasses.replace(run.guard_ctx, chain=chain, steering=steering)

    async def regenerate(extra: str) -> tuple[str, str | None]:
        benign = ctx.level == "R0" and ctx.strategy == "full_answer"
        # a benign question's retry: a small model answers better without the long steering
        msgs = [Message(role="system", content=(extra if benign else f"{steering}\n\n{extra}").strip())]
        msgs += [Message(role=m["role"], content=m["content"]) for m in run.history  # type: ignore[arg-type]
                 if m.get("role") in ("user", "assistant")]
        msgs.append(Message(role="user", content=run.query))
        res = await run.generator.chat(msgs, params=GenerationParams(max_tokens=run.config.max_tokens,
                                                                     temperature=0.0))
        return res.text or "", res.finish_reason

    first = (chosen.answer, None) if chosen is not None and chosen.answer.strip() else None
    try:
        outcome = await run.guard.arun(ctx, regenerate, first=first)
    except BudgetExceeded:
        outcome = await run.guard.arun(ctx, None, first=first)
    record.guard = outcome.as_dict()
    if chosen is None or outcome.text != chosen.answer:
        record.final_answer = outcome.text


def _last_good(iterates: list[Iterate]) -> Iterate | None:
    return next((it for it in reversed(iterates) if it.judged), None)


async def _optimise(run: _Run, record: Record) -> None:
    from pearlpoint.llm import track_usage

    config = run.config
    for round_index in range(config.steps):
        base = _last_good(record.iterates)
        if base is None:
            # Nothing was judged (the seed failed): there is no gradient to follow. A deterministic
            # retry would repeat the same answer from the cache, so stop; the record says why.
            record.warnings.append("no judged iterate to refine from; optimisation stopped")
            break
        if config.early_stop and base.perfect:
            break
        left = run.calls_left()
        if left is not None and left < CALLS_PER_ROUND:
            record.warnings.append(f"per-query call budget ({config.max_calls}) reached after {round_index} rounds")
            break
        scheduled = config.mode_for(round_index)
        mode = _effective_mode(scheduled, base, config.adaptive)
        verdict = JudgeResult.model_validate(base.judges)
        step = round_index + 1
        with track_usage() as u:
            try:
                new_chain, info = await backward(base.chain, run.query, base.answer, verdict, mode=mode,
                                                 model=run.generator, lang=run.lang,
                                                 max_tokens=config.backward_max_tokens,
                                                 max_attempts=config.max_attempts,
                                                 max_chars=config.max_prompt_chars)
            except BudgetExceeded:
                raise
            except Exception as exc:
                record.iterates.append(Iterate(step=step, mode=mode, scheduled_mode=scheduled, chain=base.chain,
                                               failed=True, error=f"backward: {type(exc).__name__}: {exc}",
                                               usage=u.snapshot()))
                continue
        backward_usage = u.snapshot()
        if new_chain == base.chain:
            record.iterates.append(Iterate(step=step, mode=mode, scheduled_mode=scheduled, chain=new_chain,
                                           backward=info, skipped=True, usage=backward_usage,
                                           error="backward proposed no effective change"))
            continue
        it = await run.evaluate(new_chain, step=step, mode=mode, scheduled=scheduled, backward_info=info)
        it.usage = {k: it.usage.get(k, 0) + backward_usage.get(k, 0) for k in set(it.usage) | set(backward_usage)}
        record.iterates.append(it)


def respond(query: str | list[Any], **kwargs: Any) -> Record:
    """Synchronous :func:`respond_async` (works inside a running event loop too)."""
    from pearlpoint.llm import run_sync

    return run_sync(respond_async(query, **kwargs))
