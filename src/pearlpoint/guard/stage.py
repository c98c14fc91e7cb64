"""The guard stage: decide -> generate -> **guard** -> answer, in one place for every path.

``Guard.arun`` takes a decision (as a :class:`GuardContext`) and a way to call the upstream, and
returns the text to send with what happened: ``trusted`` (policy trust), ``passed`` (the checker
found nothing), ``regenerated`` (the first draft failed, a re-steered second one passed),
``composed`` (the upstream was not called, or both drafts failed), or ``released_with_warnings``
(a plain ``full_answer`` whose drafts failed only on style: composing a refusal for a benign
question would be worse). ``Guard.astream`` does the same for a token stream, holding back a
window of text and checking it before it is released.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pearlpoint.guard.checker import AnswerChecker, CheckResult, default_checker, trim_loop
from pearlpoint.guard.composer import Composer, load_resources
from pearlpoint.guard.context import GuardContext
from pearlpoint.guard.policy import GuardPolicy, load_guard_policy

Generate = Callable[[str], Awaitable[tuple[str, str | None]]]  # extra steering -> (text, finish_reason)
ACTIONS_TAKEN = ("trusted", "passed", "regenerated", "composed", "released_with_warnings")
# reasons a streamed prefix can already be judged on (a refusal's alternative may still be coming)
_PREFIX_REASONS = {"complies_declined", "operational_harm", "steering_echo", "degenerate"}
_BOUNDARY = re.compile(r"[.!?。！？\n]")


@dataclass
class GuardOutcome:
    text: str
    action: str
    mode: str
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    elapsed_ms: float = 0.0
    upstream_calls: int = 0

    @property
    def header(self) -> str:
        """The ``x-pearl-guard`` header value: action, then the failed reasons."""
        return self.action + (";" + ",".join(self.reasons) if self.reasons else "")

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "action": self.action, "reasons": list(self.reasons),
                "checks": self.checks, "elapsed_ms": round(self.elapsed_ms, 2), "upstream_calls": self.upstream_calls}


class Guard:
    """Policy + checker + composer. Build once (``Guard.load(path)``), share across requests."""

    def __init__(self, policy: GuardPolicy | None = None, checker: AnswerChecker | None = None,
                 composer: Composer | None = None) -> None:
        self.policy = policy or GuardPolicy.default()
        self.checker = checker or default_checker()
        self.composer = composer or Composer(load_resources(self.policy.resources_file or None))

    @classmethod
    def load(cls, path: str | Path | None = None, checker: AnswerChecker | None = None) -> Guard:
        """Policy file merged over the default; raises ConfigError naming file, line and key."""
        return cls(load_guard_policy(path), checker=checker)

    def warm_up(self) -> None:
        self.checker.warm_up()

    def prepare(self, ctx: GuardContext) -> None:
        """Embed what the check will need before the answer exists (run it while the upstream is
        generating: the answer's check then only reads the answer)."""
        if self.mode_for(ctx) == "check":
            self.checker.prepare(ctx.prompt)

    def mode_for(self, ctx: GuardContext) -> str:
        return self.policy.action_for(ctx.strategy, ctx.level)

    def check(self, ctx: GuardContext, answer: str, *, partial: bool = False,
              finish_reason: str | None = None) -> CheckResult:
        return self.checker.check(ctx, answer, self.policy, partial=partial, finish_reason=finish_reason)

    def compose(self, ctx: GuardContext) -> str:
        return self.composer.compose(ctx)

    def resteer(self, ctx: GuardContext, reasons: list[str]) -> str:
        """Stronger steering for the one regeneration: the failed reasons, as instructions."""
        from pearlpoint.prompts import render

        return render("guard_resteer", ctx.lang, advice=[advice(r, ctx.lang) for r in reasons]).strip()

    def _may_release_on_style(self, ctx: GuardContext, *results: CheckResult) -> bool:
        """A benign request (R0, not declined) whose drafts ALL failed only on style: the draft is
        better than a composed reply, which is built for declining. One draft that failed on content
        says the request was not benign after all (the assessor is not always right at R0)."""
        return ctx.level == "R0" and not ctx.refusal_class and not any(
            r.harmful or "steering_echo" in r.failed for r in results)  # the hidden instructions never go out

    def _style_release(self, ctx: GuardContext, text: str, *results: CheckResult) -> str:
        """The text to send when only style failed on a benign request ("" = compose instead). A
        repetition loop or a cut-off ending is trimmed to the whole sentences before it: a loop is
        never sent as it is, and a short draft that is nothing but a loop is not an answer."""
        if not text.strip() or not self._may_release_on_style(ctx, *results):
            return ""
        return trim_loop(text) if "degenerate" in results[-1].failed else text

    # ---- whole answers -----------------------------------------------------------------------
    async def arun(self, ctx: GuardContext, generate: Generate | None, *,
                   first: tuple[str, str | None] | None = None) -> GuardOutcome:
        """Guard one answer. ``first`` is a draft the caller already has; ``generate`` is called for
        the first draft when there is none, and for the one regeneration (None: no regeneration)."""
        t0 = time.perf_counter()
        mode = self.mode_for(ctx)
        calls = 1 if first is not None else 0  # the caller's draft came from the upstream too

        def done(text: str, action: str, reasons: list[str], checks: list[CheckResult]) -> GuardOutcome:
            return GuardOutcome(text=text, action=action, mode=mode, reasons=reasons,
                                checks=[c.as_dict() for c in checks], upstream_calls=calls,
                                elapsed_ms=(time.perf_counter() - t0) * 1000)

        if mode == "compose":
            return done(self.compose(ctx), "composed", ["policy:compose"], [])
        if first is None:
            if generate is None:
                return done(self.compose(ctx), "composed", ["no_upstream"], [])
            first = await generate("")
            calls += 1
        text, finish = first
        if mode == "trust":
            return done(text, "trusted", [], [])
        r1 = await asyncio.to_thread(self.check, ctx, text, finish_reason=finish)
        if r1.ok:
            return done(text, "passed", [], [r1])
        reasons = list(r1.failed)
        if generate is not None:
            steer = self.resteer(ctx, r1.failed)
            try:
                text2, finish2 = await generate(steer)
                calls += 1
            except Exception:  # noqa: BLE001 - a failed retry falls back to the composed reply
                text2, finish2 = "", "error"
            r2 = await asyncio.to_thread(self.check, _with_steering(ctx, steer), text2, finish_reason=finish2)
            if r2.ok:
                return done(text2, "regenerated", reasons, [r1, r2])
            reasons += [r for r in r2.failed if r not in reasons]
            if kept := self._style_release(ctx, text2, r1, r2):
                return done(kept, "released_with_warnings", reasons, [r1, r2])
            return done(self.compose(ctx), "composed", reasons, [r1, r2])
        if kept := self._style_release(ctx, text, r1):
            return done(kept, "released_with_warnings", reasons, [r1])
        return done(self.compose(ctx), "composed", reasons, [r1])

    def run(self, ctx: GuardContext, generate: Generate | None = None, *,
            first: tuple[str, str | None] | None = None) -> GuardOutcome:
        from pearlpoint.llm import run_sync

        return run_sync(self.arun(ctx, generate, first=first))

    # ---- streams -----------------------------------------------------------------------------
    async def astream(self, ctx: GuardContext, source: AsyncIterator[str] | None, *,
                      regenerate: Generate | None = None, on_done: Callable[[GuardOutcome], None] | None = None
                      ) -> AsyncIterator[str]:
        """Yield the text to send, piece by piece. Nothing is released before it has been checked:
        a window of ``stream.window_chars`` is held back and checked (as a prefix) before release,
        and released text always ends on a sentence boundary, so a failure mid-stream ends the answer
        with the composed reply after a complete sentence, never a cut-off fragment. ``on_done`` gets
        the :class:`GuardOutcome` (the full text sent, the action, the reasons)."""
        t0 = time.perf_counter()
        mode = self.mode_for(ctx)
        sent: list[str] = []
        checks: list[CheckResult] = []
        state = {"action": "passed", "reasons": [], "calls": 0}

        def finish_outcome() -> None:
            if on_done is not None:
                on_done(GuardOutcome(text="".join(sent), action=state["action"], mode=mode,
                                     reasons=list(state["reasons"]), checks=[c.as_dict() for c in checks],
                                     elapsed_ms=(time.perf_counter() - t0) * 1000,
                                     upstream_calls=state["calls"]))

        if mode == "compose" or source is None:
            state.update(action="composed", reasons=["policy:compose" if mode == "compose" else "no_upstream"])
            text = self.compose(ctx)
            for piece in _pieces(text):
                sent.append(piece)
                yield piece
            finish_outcome()
            return
        state["calls"] = 1
        if mode == "trust":
            state["action"] = "trusted"
            async for piece in source:
                if piece:
                    sent.append(piece)
                    yield piece
            finish_outcome()
            return

        window, recheck = self.policy.window_chars, self.policy.recheck_chars
        buf = ""
        released = 0
        checked = 0
        failed: CheckResult | None = None
        async for piece in source:
            buf += piece or ""
            due = (released == 0 and len(buf) >= window) or (released > 0 and len(buf) - checked >= recheck)
            if not due:
                continue
            res = await asyncio.to_thread(self.check, ctx, buf, partial=True)
            checked = len(buf)
            if any(r.failed for r in res.reasons if r.name in _PREFIX_REASONS):
                checks.append(res)
                failed = res
                break
            cut = _release_point(buf, released, hold=3 * max(window, 1))
            if cut > released:
                out = buf[released:cut]
                released = cut
                sent.append(out)
                yield out
        if failed is None:
            res = await asyncio.to_thread(self.check, ctx, buf, finish_reason=getattr(source, "finish_reason", None))
            checks.append(res)
            if res.ok:
                if buf[released:]:
                    sent.append(buf[released:])
                    yield buf[released:]
                finish_outcome()
                return
            failed = res
        state["reasons"] = [r.name for r in failed.reasons if r.failed]
        # the failed draft is abandoned: close its stream now, or it keeps the upstream's slot (a
        # one-at-a-time model would then never start the regeneration)
        await _aclose(source)
        if released == 0 and regenerate is not None:
            steer = self.resteer(ctx, state["reasons"])
            try:
                text2, fin2 = await regenerate(steer)
                state["calls"] += 1
            except Exception:  # noqa: BLE001 - fall back to composing
                text2, fin2 = "", "error"
            r2 = await asyncio.to_thread(self.check, _with_steering(ctx, steer), text2, finish_reason=fin2)
            checks.append(r2)
            state["reasons"] += [r for r in r2.failed if r not in state["reasons"]]
            kept = text2 if r2.ok else self._style_release(ctx, text2, *checks)
            if kept:
                state["action"] = "regenerated" if r2.ok else "released_with_warnings"
                for piece in _pieces(kept):
                    sent.append(piece)
                    yield piece
                finish_outcome()
                return
        # (every draft's check counts: a regeneration that failed on content or echoed the steering forbids it)
        kept = self._style_release(ctx, buf, *checks)
        if released == 0 and kept:
            state["action"] = "released_with_warnings"
            sent.append(kept)
            yield kept
            finish_outcome()
            return
        if released and self._may_release_on_style(ctx, *checks):
            # checked, benign text is already out and only style failed later (a loop started): end on
            # the whole sentences before the loop instead of appending a reply built for declining
            state["action"] = "released_with_warnings"
            tail = kept[released:] if kept.startswith(buf[:released]) else ""
            if tail:
                sent.append(tail)
                yield tail
            finish_outcome()
            return
        state["action"] = "composed"
        text = self.compose(ctx)
        if released:
            text = "\n\n" + text
        for piece in _pieces(text):
            sent.append(piece)
            yield piece
        finish_outcome()


def _with_steering(ctx: GuardContext, extra: str) -> GuardContext:
    """The context for checking a regenerated draft: its steering includes the stronger instructions it
    was given, so a draft that repeats them back fails ``steering_echo``."""
    return dataclasses.replace(ctx, steering=f"{ctx.steering}\n{extra}".strip())


async def _aclose(source: Any) -> None:
    close = getattr(source, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - a broken stream that fails to close is already abandoned
            pass


def _release_point(buf: str, released: int, hold: int) -> int:
    """Release up to the last sentence boundary; with none in a long stretch, up to the last space."""
    last = -1
    for m in _BOUNDARY.finditer(buf, released):
        last = m.end()
    if last > released:
        return last
    if len(buf) - released > hold:
        sp = buf.rfind(" ", released, len(buf) - 1)
        if sp > released:
            return sp + 1
    return released


def _pieces(text: str, size: int = 24) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or []


@functools.cache
def _advice() -> dict[str, dict[str, str]]:
    return yaml.safe_load((Path(__file__).parent / "data" / "advice.yaml").read_text(encoding="utf-8"))


def advice(reason: str, lang: str = "en") -> str:
    """What to change for a failed checker reason, as an instruction (steering and Lingo-BP feedback)."""
    table = _advice()["zh" if lang == "zh" else "en"]
    return table.get(reason, table["degenerate"])


_GUARD: dict[str, Guard] = {}


def get_guard(path: str | Path | None = None) -> Guard:
    """A process-wide guard per policy file (the checker's model loads once)."""
    key = str(path or "")
    if key not in _GUARD:
        _GUARD[key] = Guard.load(path)
    return _GUARD[key]
