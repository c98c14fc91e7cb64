"""The CSA decision for one request: assess -> solve -> seed chain -> steering message.

All of it is CPU work (embeddings, a small game), so :meth:`CSAEngine.decide` runs it in a thread
pool and the event loop keeps serving other requests (no head-of-line blocking). The result is a
:class:`Decision`: the hidden steering text for the upstream plus the public ``pearl`` summary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pearlpoint.errors import ConfigError
from pearlpoint.serve.config import ServeConfig

_REFUSAL = re.compile(
    r"\b(i\s+(?:can(?:no|')t|cannot|won'?t|will not|am not able to|'m not able to|am unable to|'m unable to)"
    r"|unable to (?:help|assist|provide)|not able to (?:help|assist|provide)|i must decline)\b"
    r"|我(?:不能|无法|不会|没法)|抱歉.{0,8}(?:不能|无法)", re.IGNORECASE)

REFUSAL_STRATEGIES = {"hard_refusal", "refusal", "soft_refusal", "refuse"}


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text or ""))


def turns_key(turns: list[tuple[str, str]]) -> str:
    canon = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass
class PriorDecision:
    level: str
    strategy: str
    category: str


class ConversationMemory:
    """Remembers recent decisions by the conversation they answered, so that the next turn of the same
    conversation (which the client sends back in full) can be linked to what we decided before."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[str, PriorDecision] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, turns: list[tuple[str, str]], decision: PriorDecision) -> None:
        key = turns_key(turns)
        with self._lock:
            self._items[key] = decision
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def recall(self, turns: list[tuple[str, str]]) -> PriorDecision | None:
        with self._lock:
            return self._items.get(turns_key(turns))


@dataclass
class Decision:
    """What the proxy decided for one request. ``steering`` is secret; ``public()`` is what clients see."""

    lang: str
    assessment: Any
    solution: Any
    chain: Any
    steering: str
    escalation: bool = False
    prior: PriorDecision | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def level(self) -> str:
        return _enum_value(self.assessment.level)

    @property
    def strategy(self) -> str:
        return str(getattr(self.solution, "pearl_point", "") or "unsteered")

    def public(self) -> dict[str, Any]:
        a, s = self.assessment, self.solution
        chosen = getattr(s, "chosen", None)
        out: dict[str, Any] = {
            "category": a.category,
            "level": self.level,
            "intent": _enum_value(a.intent),
            "interaction_form": _enum_value(a.interaction_form),
            "severity": a.severity,
            "harmful_probability": round(float(a.harmful_probability), 4),
            "user_types": {k: round(v, 4) for k, v in a.user_types.as_dict().items()},
            "language": self.lang,
            "assessor": a.assessor,
            "strategy": self.strategy,
            "strategy_label": getattr(chosen, "label", None),
            "escalation": self.escalation,
        }
        scores: dict[str, Any] = {"confidence": round(float(a.confidence), 4)}
        outcome = _chosen_outcome(s)
        if outcome is not None:
            scores["expected_utility"] = _round(getattr(outcome, "expected_utility", None))
            scores["expected_risk"] = _round(getattr(outcome, "expected_risk", None))
        if s is not None:
            scores["infeasible"] = bool(getattr(s, "infeasible", False))
            scores["beta"] = getattr(s, "beta", None)
        out["scores"] = scores
        nxt = _next_turn_summary(s)
        if nxt:
            out["next_turn"] = nxt
        return out


def _round(x: Any) -> Any:
    return round(float(x), 4) if isinstance(x, (int, float)) else x


def _enum_value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _chosen_outcome(solution: Any) -> Any:
    for o in getattr(solution, "strategies", None) or []:
        if getattr(o, "id", None) == getattr(solution, "pearl_point", None):
            return o
    return None


def _next_turn_summary(solution: Any) -> dict[str, Any] | None:
    """A JSON-safe view of the game's next-turn anticipation, whatever shape the solver gives it."""
    nt = getattr(solution, "next_turn", None)
    if nt is None:
        return None
    if hasattr(nt, "model_dump"):
        nt = nt.model_dump(mode="json")
    if isinstance(nt, dict):
        return {k: v for k, v in nt.items() if isinstance(v, (str, int, float, bool, dict, list)) or v is None}
    return {"summary": str(nt)}


def _anticipation_text(solution: Any, lang: str) -> str:
    nt = getattr(solution, "next_turn", None)
    if nt is None:
        return ""
    for attr in ("text", "summary", "describe"):
        fn = getattr(nt, attr, None)
        if callable(fn):
            try:
                return str(fn(lang))
            except TypeError:
                return str(fn())
        if isinstance(fn, str):
            return fn
    if isinstance(nt, dict):
        for k in ("text", "summary", lang):
            if isinstance(nt.get(k), str):
                return nt[k]
    return ""


class CSAEngine:
    """Holds the assessor, policy and payoffs for one config; decides requests off the event loop."""

    def __init__(self, cfg: ServeConfig, *, assessor: Any = None, memory: ConversationMemory | None = None,
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.cfg = cfg
        self.memory = memory or ConversationMemory()
        try:
            from pearlpoint.policy import get_policy
        except ImportError as exc:  # pragma: no cover - policy ships with the package
            raise ConfigError(f"pearlpoint.policy is not available: {exc}") from exc
        self.policy = get_policy(cfg.csa.policy_file)
        self.payoffs = _load_payoffs(cfg.csa.payoffs_file)
        self.assessor = assessor if assessor is not None else _build_assessor(cfg)
        self.executor = executor or ThreadPoolExecutor(cfg.csa.assess_workers, thread_name_prefix="pearl-csa")
        self._own_executor = executor is None

    def warm_up(self) -> None:
        """Run one decision so model loading happens at startup, not on the first user request."""
        from pearlpoint.llm import Message

        self.decide_sync([Message(role="user", content="Hello! What is the capital of France?")])

    def close(self) -> None:
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    async def decide(self, messages: list[Any]) -> Decision:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, self.decide_sync, messages)

    def decide_sync(self, messages: list[Any]) -> Decision:
        import time

        from pearlpoint.prompts import detect_language, render

        timings: dict[str, float] = {}
        convo = [m for m in messages if m.role in ("user", "assistant")]
        last_user = next((m.content for m in reversed(convo) if m.role == "user"), "")
        lang = detect_language(last_user)
        # the turns before the last user message, as the client replayed them
        prior_turns = [(m.role, m.content) for m in convo[:-1]] if convo and convo[-1].role == "user" else []
        prior = self.memory.recall(prior_turns) if prior_turns else None
        prev_assistant = next((m.content for m in reversed(convo[:-1]) if m.role == "assistant"), None)

        t = time.perf_counter()
        assessment = self.assessor.assess(convo if len(convo) > 1 else last_user)
        timings["assess"] = time.perf_counter() - t

        declined_before = (prior is not None and (prior.strategy in REFUSAL_STRATEGIES or prior.level != "R0")) or (
            prev_assistant is not None and looks_like_refusal(prev_assistant))
        escalation = bool(declined_before and _enum_value(assessment.level) != "R0")

        t = time.perf_counter()
        solution = self._solve(assessment)
        timings["solve"] = time.perf_counter() - t

        t = time.perf_counter()
        chain, steering = None, ""
        if self.cfg.csa.steer:
            from pearlpoint.chain import seed_chain, steering_message

            chain = seed_chain(assessment, solution, policy=self.policy, lang=lang)
            steering = render("serve_guard", lang, steering=steering_message(chain, lang),
                              anticipation=_anticipation_text(solution, lang), escalation=escalation)
        timings["steer"] = time.perf_counter() - t
        return Decision(lang=lang, assessment=assessment, solution=solution, chain=chain, steering=steering,
                        escalation=escalation, prior=prior, timings=timings)

    def _solve(self, assessment: Any) -> Any:
        from pearlpoint.game import solve

        kw: dict[str, Any] = {"beta": self.cfg.csa.beta}
        if self.payoffs is not None:
            kw["payoffs"] = self.payoffs
        return solve(assessment, **kw)


def _build_assessor(cfg: ServeConfig) -> Any:
    try:
        from pearlpoint.risk import get_assessor
    except ImportError as exc:
        raise ConfigError(f"the risk assessor is not available ({exc}); pearlpoint.risk is required to serve") from exc
    return get_assessor(cfg.csa.assessor)


def _load_payoffs(path: str | None) -> Any:
    if not path:
        return None
    import pearlpoint.game as game

    for name in ("load_payoffs", "Payoffs.from_file"):
        obj: Any = game
        for part in name.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if callable(obj):
            return obj(path)
    raise ConfigError(f"{path}: this version of pearlpoint.game cannot load a payoffs file")


Decider = Callable[[list[Any]], Decision]
