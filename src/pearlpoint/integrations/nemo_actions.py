"""NeMo Guardrails actions that give a rails app the Pearl Point decision instead of a yes/no block.

Four actions, each a thin wrapper over the stages the proxy uses (nothing of the CSA logic is
repeated here):

* ``pearl_assess_input``    the risk report for the user message (category, level, intent, who is
                            probably asking), from :class:`pearlpoint.serve.csa.CSAEngine`;
* ``pearl_decide_strategy`` the Pearl Point strategy, the guard's mode for it (trust / check /
                            compose) and the hidden steering for the LLM;
* ``pearl_check_output``    the guard's answer checker on ``$bot_message``; a failing answer gets
                            one re-steered regeneration, then the composed reply (``replace`` and
                            ``text`` in the result);
* ``pearl_compose_reply``   the composer's constructive reply in the user's language.

``register(rails)`` adds them to an ``LLMRails``; the example config in ``nemo_config/`` does that
from its ``config.py`` and wires them as an input and an output rail (see docs/nemo.md).

Actions return JSON-safe dicts, because NeMo keeps them in its context and event log. The heavy
objects (the decision, the guard context) stay in a small in-process cache keyed by
``decision_id``; if an entry is gone, the output rail decides again from the user message.
Malformed input (None, empty, not a string) never raises: the report says ``ok: false`` and the
rails pass the message through unguarded, with the reason.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pearlpoint.integrations import require

ACTION_NAMES = ("pearl_assess_input", "pearl_decide_strategy", "pearl_check_output", "pearl_compose_reply")
MAX_CHARS = 32_000  # longer user messages are assessed on their first MAX_CHARS characters


@dataclass
class _Entry:
    decision: Any
    ctx: Any  # GuardContext


@dataclass
class PearlNemo:
    """The engine and guard the actions share (built once per process, on first use)."""

    engine: Any = None
    guard: Any = None
    cache_size: int = 2048
    _cache: OrderedDict[str, _Entry] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ensure(self) -> PearlNemo:
        if self.engine is None or self.guard is None:
            with self._lock:
                if self.engine is None:
                    from pearlpoint.serve.config import ServeConfig
                    from pearlpoint.serve.csa import CSAEngine

                    self.engine = CSAEngine(ServeConfig())
                if self.guard is None:
                    from pearlpoint.guard import Guard

                    self.guard = Guard.load()
        return self

    def warm_up(self) -> None:
        """Load the encoder and the checker now, not on the first user message."""
        self.ensure()
        self.engine.warm_up()
        self.guard.warm_up()

    def put(self, entry: _Entry) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._cache[key] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return key

    def get(self, key: Any) -> _Entry | None:
        if not isinstance(key, str):
            return None
        with self._lock:
            return self._cache.get(key)


_STATE = PearlNemo()


def configure(*, engine: Any = None, guard: Any = None, guard_file: str | None = None) -> PearlNemo:
    """Use this engine / guard (e.g. a ``CSAEngine`` built from a serve config) instead of the defaults."""
    global _STATE
    if guard is None and guard_file is not None:
        from pearlpoint.guard import Guard

        guard = Guard.load(guard_file)
    _STATE = PearlNemo(engine=engine, guard=guard)
    return _STATE


def warm_up() -> None:
    """Load the encoder and the checker now (a few seconds on a CPU), not on the first user message."""
    _STATE.warm_up()


# ---- reading NeMo's context ---------------------------------------------------------------------
def _text(x: Any) -> str | None:
    """A usable message text, or None (None, non-strings and blank strings are not usable)."""
    if isinstance(x, str) and x.strip():
        return x[:MAX_CHARS]
    if isinstance(x, list):  # multimodal content: the text parts
        parts = [p.get("text") for p in x if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return _text(" ".join(parts))
    return None


def _conversation(context: dict | None, events: list | None, text: Any) -> tuple[list[Any], str | None]:
    """The conversation so far as pearlpoint messages, ending with the current user message.

    Earlier turns come from NeMo's events (the user's utterances and what the bot actually said),
    so the engine sees the same history the proxy would and can tell a user pressing on."""
    from pearlpoint.llm import Message

    ctx = context if isinstance(context, dict) else {}
    latest = _text(text) if text is not None else _text(ctx.get("user_message"))
    if latest is None:
        return [], None
    turns: list[Any] = []
    for ev in events if isinstance(events, list) else []:
        if not isinstance(ev, dict):
            continue
        if ev.get("type") == "UtteranceUserActionFinished" and _text(ev.get("final_transcript")):
            turns.append(Message(role="user", content=_text(ev.get("final_transcript"))))
        elif ev.get("type") == "StartUtteranceBotAction" and _text(ev.get("script")):
            turns.append(Message(role="assistant", content=_text(ev.get("script"))))
    if turns and turns[-1].role == "user":
        turns.pop()  # the current turn; the input rails may have changed its text
    return [*turns[-40:], Message(role="user", content=latest)], latest


def _skip(reason: str) -> dict[str, Any]:
    return {"ok": False, "error": reason, "decision_id": None, "strategy": None, "mode": "trust",
            "compose": False, "steering": ""}


async def _entry(report: Any, context: dict | None, events: list | None) -> tuple[_Entry | None, str]:
    """The cached decision for this report, or a fresh one from the context when it is gone."""
    st = _STATE.ensure()
    msgs, latest = _conversation(context, events, None)
    if isinstance(report, dict):
        got = st.get(report.get("decision_id"))
        # a report from an earlier turn (the input rail skipped this time) is not this turn's decision
        if got is not None and (latest is None or got.ctx.prompt == latest):
            return got, ""
    if latest is None:
        return None, "no user message to decide on"
    return await _decide(msgs, latest), ""


async def _decide(msgs: list[Any], latest: str) -> _Entry:
    from pearlpoint.guard import GuardContext

    st = _STATE.ensure()
    decision = await st.engine.decide(msgs)
    return _Entry(decision=decision, ctx=GuardContext.from_decision(decision, latest))


# ---- the actions -------------------------------------------------------------------------------
async def pearl_assess_input(context: dict | None = None, events: list | None = None,
                             text: Any = None) -> dict[str, Any]:
    """The risk report for the user message: category, level, intent, who is probably asking."""
    msgs, latest = _conversation(context, events, text)
    if latest is None:
        return _skip("empty or non-text user message; passed through unassessed")
    try:
        entry = await _decide(msgs, latest)
    except Exception as exc:  # noqa: BLE001 - a host's rail must not crash on our failure
        return _skip(f"risk assessment failed: {type(exc).__name__}: {exc}"[:300])
    report = entry.decision.public()
    report.update(ok=True, error=None, decision_id=_STATE.put(entry), dominant_user=entry.ctx.dominant_user,
                  vulnerable=entry.ctx.vulnerable)
    return report


async def pearl_decide_strategy(report: Any = None, context: dict | None = None,
                                events: list | None = None) -> dict[str, Any]:
    """The Pearl Point strategy and the guard's mode for it; ``compose`` means the guard answers
    itself (the LLM is not called), ``steering`` is the hidden guidance for the LLM otherwise."""
    if isinstance(report, dict) and report.get("ok") is False:
        return _skip(str(report.get("error") or "no assessment"))
    try:
        entry, why = await _entry(report, context, events)
        if entry is None:
            return _skip(why)
        mode = _STATE.guard.mode_for(entry.ctx)
    except Exception as exc:  # noqa: BLE001
        return _skip(f"strategy decision failed: {type(exc).__name__}: {exc}"[:300])
    return {"ok": True, "error": None, "decision_id": report.get("decision_id") if isinstance(report, dict) else None,
            "strategy": entry.decision.strategy, "level": entry.decision.level, "mode": mode,
            "compose": mode == "compose", "steering": entry.decision.steering or "",
            "language": entry.decision.lang}


async def pearl_compose_reply(report: Any = None, context: dict | None = None,
                              events: list | None = None) -> str:
    """The composer's constructive reply (what it declines, why, what it can do, a resource when the
    user may be at risk), in the user's language. Empty string when there is nothing to decide on."""
    try:
        entry, _ = await _entry(report, context, events)
        return _STATE.guard.compose(entry.ctx) if entry is not None else ""
    except Exception:  # noqa: BLE001 - an empty reply lets the host fall back to its own message
        return ""


def _regenerator(llm: Any, entry: _Entry, context: dict, events: list | None) -> Any:
    """The guard's one regeneration through NeMo's own main LLM: the decision's steering plus the
    checker's reasons as a system message, then the conversation (the proxy does the same upstream)."""
    if llm is None:
        return None

    async def generate(extra: str) -> tuple[str, str | None]:
        llm_call = require("nemo", "nemoguardrails.llm.call").llm_call
        msgs, _ = _conversation(context, events, None)
        steering = "\n\n".join(x for x in (entry.decision.steering, extra) if x)
        prompt = ([{"role": "system", "content": steering}] if steering else []) + \
            [{"role": m.role, "content": m.content} for m in msgs]
        resp = await llm_call(llm, prompt)
        return str(resp.content or ""), getattr(resp, "finish_reason", None)

    return generate


async def pearl_check_output(context: dict | None = None, events: list | None = None, report: Any = None,
                             bot_message: Any = None, llm: Any = None, regenerate: bool = True) -> dict[str, Any]:
    """The guard's checker on the bot message, given the decision. A failing answer gets one
    regeneration through NeMo's main LLM (``llm``, passed by NeMo; ``regenerate=False`` turns it off)
    with the checker's reasons as stronger steering, checked again; if that fails too the composed
    reply is sent. ``replace`` is true when ``text`` differs from the bot message; ``action`` is the
    guard's word for what happened (trusted, passed, regenerated, released_with_warnings, composed)."""
    ctx = context if isinstance(context, dict) else {}
    report = report if report is not None else ctx.get("pearl")
    answer = bot_message if bot_message is not None else ctx.get("bot_message")
    if not isinstance(answer, str):
        answer = "" if answer is None else str(answer)
    if isinstance(report, dict) and report.get("ok") is False:
        return {"ok": False, "error": report.get("error"), "replace": False, "text": answer, "action": "skipped",
                "mode": "trust", "reasons": []}
    try:
        entry, why = await _entry(report, ctx, events)
        if entry is None:
            return {"ok": False, "error": why, "replace": False, "text": answer, "action": "skipped",
                    "mode": "trust", "reasons": []}
        retry = _regenerator(llm, entry, ctx, events) if regenerate else None
        outcome = await _STATE.guard.arun(entry.ctx, retry, first=(answer, None))
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"answer check failed: {type(exc).__name__}: {exc}"[:300], "replace": False,
                "text": answer, "action": "skipped", "mode": "trust", "reasons": []}
    return {"ok": True, "error": None, "replace": outcome.text != answer, "text": outcome.text,
            "action": outcome.action, "mode": outcome.mode, "reasons": list(outcome.reasons),
            "llm_calls": outcome.upstream_calls}


ACTIONS: dict[str, Callable[..., Any]] = {
    "pearl_assess_input": pearl_assess_input,
    "pearl_decide_strategy": pearl_decide_strategy,
    "pearl_check_output": pearl_check_output,
    "pearl_compose_reply": pearl_compose_reply,
}


def register(rails: Any, *, warm_up: bool = False) -> Any:
    """Register the four actions on an ``LLMRails`` (system actions: they run in this process even
    when the rails use an actions server). Returns ``rails``."""
    nemo_actions = require("nemo", "nemoguardrails.actions")
    for name, fn in ACTIONS.items():
        rails.register_action(nemo_actions.action(is_system_action=True, name=name)(fn), name=name)
    if warm_up:
        _STATE.warm_up()  # the module-level warm_up() is shadowed by the argument here
    return rails


def config_path() -> str:
    """The example rails config shipped with pearlpoint (config.yml, rails.co, config.py)."""
    from pathlib import Path

    return str(Path(__file__).parent / "nemo_config")


__all__ = ["ACTIONS", "ACTION_NAMES", "PearlNemo", "config_path", "configure", "pearl_assess_input",
           "pearl_check_output", "pearl_compose_reply", "pearl_decide_strategy", "register", "warm_up"]
