"""The CSA decision for one request: assess -> solve -> seed chain -> steering message.

All of it is CPU work (embeddings, a small game), so :meth:`CSAEngine.decide` runs it in a thread
pool and the event loop keeps serving other requests (no head-of-line blocking). The result is a
:class:`Decision`: the hidden steering text for the upstream plus the public ``pearl`` summary.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pearlpoint.errors import ConfigError, PearlError
from pearlpoint.serve.config import ServeConfig
from pearlpoint.serve.context_risk import ContextPlan, combine, plan

_REFUSAL = re.compile(
    r"\b(i\s+(?:can(?:no|')t|cannot|won'?t|will not|am not able to|'m not able to|am unable to|'m unable to)"
    r"|unable to (?:help|assist|provide)|not able to (?:help|assist|provide)|i must decline)\b"
    r"|我(?:不能|无法|不会|没法)|抱歉.{0,8}(?:不能|无法)", re.IGNORECASE)

# Replies after which a renewed risky request counts as pressing on (not a fresh question).
FORTHCOMING_STRATEGIES = {"full_answer", "safe_framing"}


class EngineClosed(PearlError):
    """The engine was shut down (a reload replaced it); the request should be answered 503, not hang."""


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text or ""))


def turns_key(turns: list[tuple[str, str]], client: str = "") -> str:
    """Key of one client's conversation: the same text from two clients is two conversations."""
    canon = json.dumps([client, turns], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass
class PriorDecision:
    level: str
    strategy: str
    category: str
    # the game's stage-two posteriors by next state ("retry", "escalation"), from that turn's solve
    next_posteriors: dict[str, dict[str, float]] = field(default_factory=dict)


class ConversationMemory:
    """Remembers recent decisions by the conversation they answered, so that the next turn of the same
    conversation (which the client sends back in full) can be linked to what we decided before.
    Keyed by (client key, conversation), so one client's history never colours another's identical
    conversation."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._items: OrderedDict[str, PriorDecision] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, turns: list[tuple[str, str]], decision: PriorDecision, client: str = "") -> None:
        key = turns_key(turns, client)
        with self._lock:
            self._items[key] = decision
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def recall(self, turns: list[tuple[str, str]], client: str = "") -> PriorDecision | None:
        with self._lock:
            return self._items.get(turns_key(turns, client))


@dataclass
class Decision:
    """What the proxy decided for one request. ``steering`` is secret; ``public()`` is what clients see."""

    lang: str
    assessment: Any
    solution: Any
    chain: Any
    steering: str
    escalation: bool = False
    next_state: str | None = None
    prior: PriorDecision | None = None
    posterior: dict[str, float] | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def prior_record(self) -> PriorDecision:
        """What the next turn of this conversation needs to know about this one."""
        nxt: dict[str, dict[str, float]] = {}
        for n in getattr(self.solution, "next_turn", None) or []:
            nxt.setdefault(n.state, dict(n.posterior))
        return PriorDecision(level=self.level, strategy=self.strategy, category=self.assessment.category,
                             next_posteriors=nxt)

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
            "user_types": {k: round(v, 4) for k, v in (self.posterior or a.user_types.as_dict()).items()},
            "language": self.lang,
            "assessor": a.assessor,
            "strategy": self.strategy,
            "strategy_label": getattr(chosen, "label", None),
            "escalation": self.escalation,
        }
        if self.next_state is not None:
            out["pressing"] = {"state": self.next_state,
                               "assessor_user_types": {k: round(v, 4) for k, v in a.user_types.as_dict().items()},
                               "previous_strategy": self.prior.strategy if self.prior else None}
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


def _next_turn_summary(solution: Any) -> list[dict[str, Any]] | None:
    """The game's two-stage anticipation, JSON-safe: where each user type's reaction leads and the plan."""
    nt = getattr(solution, "next_turn", None)
    if not nt:
        return None
    return [{"type": n.type, "reaction": n.reaction, "state": n.state, "planned_strategy": n.planned_strategy}
            for n in nt]


def anticipation_items(solution: Any, payoffs: Any, lang: str) -> list[dict[str, str]]:
    """One line per next state the game expects (retry, escalation...): the state and the planned reply."""
    nt = getattr(solution, "next_turn", None) or []
    states = {st.id: st for st in getattr(payoffs, "next_states", [])} if payoffs is not None else {}
    strategies = {st.id: st for st in getattr(payoffs, "strategies", [])} if payoffs is not None else {}
    out, seen = [], set()
    for n in nt:
        if n.state in seen:
            continue
        seen.add(n.state)
        st, strat = states.get(n.state), strategies.get(n.planned_strategy)
        out.append({"state": st.name(lang) if st is not None else n.state.replace("_", " "),
                    "strategy": strat.name(lang) if strat is not None else n.planned_strategy.replace("_", " ")})
    return out


@dataclass
class _Pending:
    """One request's conversation, prepared for assessment (cheap work done on the caller's side)."""

    convo: list[Any]
    last_user: str
    lang: str
    prior: PriorDecision | None
    prev_assistant: str | None
    plan: ContextPlan = field(default_factory=lambda: ContextPlan([""], ["latest"]))

    @property
    def assess_inputs(self) -> list[str]:
        """Every reading of this conversation to assess (context_risk.plan); combined by ``combine``."""
        return self.plan.inputs


class CSAEngine:
    """Holds the assessor, policy and payoffs for one config; decides requests off the event loop.

    Concurrent requests are assessed in micro-batches: worker threads take everything that is
    waiting and embed it in one call, so throughput under load is the encoder's batch throughput
    and a lone request waits for nothing.
    """

    def __init__(self, cfg: ServeConfig, *, assessor: Any = None, memory: ConversationMemory | None = None) -> None:
        self.cfg = cfg
        self.memory = memory or ConversationMemory()
        self.max_batch = cfg.csa.max_batch
        try:
            from pearlpoint.policy import get_policy
        except ImportError as exc:  # pragma: no cover - policy ships with the package
            raise ConfigError(f"pearlpoint.policy is not available: {exc}") from exc
        self.policy = get_policy(cfg.csa.policy_file)
        self.payoffs = _load_payoffs(cfg.csa.payoffs_file)  # parsed once, not per request
        self.assessor = assessor if assessor is not None else _build_assessor(cfg)
        self._queue: queue.Queue[tuple[_Pending, asyncio.Future, asyncio.AbstractEventLoop] | None] = queue.Queue()
        self._workers = [threading.Thread(target=self._work, name=f"pearl-csa-{i}", daemon=True)
                         for i in range(cfg.csa.assess_workers)]
        self._closed = False
        self._close_lock = threading.Lock()
        for w in self._workers:
            w.start()
        self._cache = _LRU(4096)
        self.batches = 0  # how many assessor calls served how many requests (for the bench)
        self.batched_requests = 0

    def warm_up(self) -> None:
        """Run one decision so model loading happens at startup, not on the first user request."""
        from pearlpoint.llm import Message

        self.decide_sync([Message(role="user", content="Hello! What is the capital of France?")])

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop the workers once the requests already queued are decided; later ``decide`` calls raise
        :class:`EngineClosed` at once (queued under the same lock, so none can slip in behind the stop)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._workers:
                self._queue.put(None)

    async def decide(self, messages: list[Any], client: str = "") -> Decision:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Decision] = loop.create_future()
        pending = self._prepare(messages, client)
        with self._close_lock:
            if self._closed:
                raise EngineClosed("the CSA engine was shut down (config reload); retry the request")
            self._queue.put((pending, fut, loop))
        return await fut

    def decide_sync(self, messages: list[Any], client: str = "") -> Decision:
        import time

        pending = self._prepare(messages, client)
        t = time.perf_counter()
        assessment = combine(pending.plan, self._assess_many(pending.assess_inputs))
        return self._finish(pending, assessment, time.perf_counter() - t)

    def _work(self) -> None:
        import time

        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)  # let this worker finish the batch, then stop
                    break
                batch.append(nxt)
            t = time.perf_counter()
            try:  # every reading of every waiting conversation in one assessor call
                flat = self._assess_many([x for p, _, _ in batch for x in p.assess_inputs])
                assessments, at = [], 0
                for p, _, _ in batch:
                    assessments.append(flat[at:at + p.plan.size])
                    at += p.plan.size
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, fut, loop in batch:
                    loop.call_soon_threadsafe(_settle, fut, None, exc)
                continue
            per_item = (time.perf_counter() - t)
            self.batches += 1
            self.batched_requests += len(batch)
            for (pending, fut, loop), readings in zip(batch, assessments, strict=True):
                try:
                    decision = self._finish(pending, combine(pending.plan, readings), per_item)
                except Exception as exc:  # noqa: BLE001
                    loop.call_soon_threadsafe(_settle, fut, None, exc)
                else:
                    loop.call_soon_threadsafe(_settle, fut, decision, None)

    def _assess_many(self, inputs: list[Any]) -> list[Any]:
        """Assess a batch; identical texts seen recently (retries, popular questions, the earlier turns
        of a conversation) are answered from a small cache, since the embedded assessor is deterministic.
        A text repeated within the batch is assessed once."""
        keys = [_assess_key(x) for x in inputs]
        out: list[Any] = [self._cache.get(k) for k in keys]
        out = [a.model_copy(deep=True) if a is not None and hasattr(a, "model_copy") else a for a in out]
        first: dict[str, int] = {}
        todo = [i for i, a in enumerate(out) if a is None and first.setdefault(keys[i], i) == i]
        if todo:
            many = getattr(self.assessor, "assess_batch", None)
            fresh = (list(many([inputs[i] for i in todo])) if callable(many) and len(todo) > 1
                     else [self.assessor.assess(inputs[i]) for i in todo])
            for i, a in zip(todo, fresh, strict=True):
                out[i] = a
                self._cache.put(keys[i], a)
            for i, a in enumerate(out):  # repeats within this batch
                if a is None:
                    src = out[first[keys[i]]]
                    out[i] = src.model_copy(deep=True) if hasattr(src, "model_copy") else src
        return out

    def _prepare(self, messages: list[Any], client: str = "") -> _Pending:
        from pearlpoint.prompts import detect_language

        convo = [m for m in messages if m.role in ("user", "assistant")]
        last_user = next((m.content for m in reversed(convo) if m.role == "user"), "")
        # the turns before the last user message, as the client replayed them
        prior_turns = [(m.role, m.content) for m in convo[:-1]] if convo and convo[-1].role == "user" else []
        return _Pending(convo=convo, last_user=last_user, lang=detect_language(last_user),
                        prior=self.memory.recall(prior_turns, client) if prior_turns else None,
                        prev_assistant=next((m.content for m in reversed(convo[:-1]) if m.role == "assistant"), None),
                        plan=plan(convo) if convo else ContextPlan([last_user], ["latest"]))

    def _finish(self, p: _Pending, assessment: Any, assess_s: float) -> Decision:
        import time

        from pearlpoint.prompts import render

        timings: dict[str, float] = {"assess": assess_s}
        # Multi-turn: a risky request right after we declined or redirected is the game's "retry" or
        # "escalation" state. Use the game's own anticipation (stage-two posterior) to update who is
        # probably asking, then solve again from there.
        declined_before = (p.prior is not None and p.prior.strategy not in FORTHCOMING_STRATEGIES) or (
            p.prev_assistant is not None and looks_like_refusal(p.prev_assistant))
        risky_now = _enum_value(assessment.level) != "R0"
        next_state = None
        posterior = None
        if declined_before and risky_now:
            next_state = "escalation" if (_enum_value(assessment.level) == "R2" or _enum_value(
                assessment.intent) == "malicious_instruction") else "retry"
            posterior = self._pressing_posterior(assessment, p.prior, next_state)

        t = time.perf_counter()
        solution = self._solve(assessment, posterior)
        timings["solve"] = time.perf_counter() - t

        t = time.perf_counter()
        chain, steering = None, ""
        if self.cfg.csa.steer:
            from pearlpoint.chain import seed_chain, steering_message

            chain = seed_chain(assessment, solution, policy=self.policy, lang=p.lang)
            steering = render("serve_guard", p.lang, steering=steering_message(chain, p.lang),
                              anticipation=anticipation_items(solution, self.payoffs, p.lang),
                              pressing=next_state or "")
        timings["steer"] = time.perf_counter() - t
        return Decision(lang=p.lang, assessment=assessment, solution=solution, chain=chain, steering=steering,
                        escalation=next_state is not None, next_state=next_state, prior=p.prior,
                        posterior=posterior, timings=timings)

    def _pressing_posterior(self, assessment: Any, prior: PriorDecision | None, state: str) -> dict[str, float]:
        """Posterior over user types when the user presses on after a declined answer.

        With the previous turn's solve remembered, its stage-two posterior for this state is the
        prediction; it is combined with what the assessor reads from this turn (product of the two,
        renormalised). Without it, the state's type likelihoods from the payoffs update this turn's
        posterior directly."""
        current = assessment.user_types.as_dict()
        if prior is not None and state in prior.next_posteriors:
            other = prior.next_posteriors[state]
        else:
            st = next((x for x in getattr(self.payoffs, "next_states", []) if x.id == state), None)
            other = dict(st.type_likelihood) if st is not None else {}
        if not other:
            return current
        raw = {t: current.get(t, 0.0) * other.get(t, 0.0) for t in current}
        total = sum(raw.values())
        return {t: v / total for t, v in raw.items()} if total > 0 else current

    def _solve(self, assessment: Any, posterior: dict[str, float] | None = None) -> Any:
        from pearlpoint.game import solve

        return solve(assessment, payoffs=self.payoffs, beta=self.cfg.csa.beta, two_stage=True,
                     policy=self.policy, posterior=posterior)


def _assess_key(x: Any) -> str:
    if isinstance(x, str):
        return "t:" + x
    return "m:" + json.dumps([(getattr(m, "role", ""), getattr(m, "content", "")) for m in x], ensure_ascii=False)


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


def _settle(fut: asyncio.Future, value: Any, exc: BaseException | None) -> None:
    if fut.done():  # the request was cancelled (client gone) while we worked
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)


def _build_assessor(cfg: ServeConfig) -> Any:
    try:
        from pearlpoint.risk import get_assessor
    except ImportError as exc:
        raise ConfigError(f"the risk assessor is not available ({exc}); pearlpoint.risk is required to serve") from exc
    return get_assessor(cfg.csa.assessor, assessor_settings(cfg))


def assessor_settings(cfg: ServeConfig) -> Any:
    """Settings for the risk assessor: the proxy's policy file, and for the llm/cascade assessors the
    proxy's own judge (``refine.judge_*`` when set, else the upstream) instead of the global defaults."""
    from pearlpoint.config import get_settings

    u, r = cfg.upstream, cfg.refine
    judge = r.judge_model is not None
    return get_settings(
        assessor=cfg.csa.assessor, policy_file=cfg.csa.policy_file, payoffs_file=cfg.csa.payoffs_file,
        model=u.model, model_name=u.model_name, base_url=u.base_url, api_key=u.api_key,
        judge_model=r.judge_model if judge else u.model,
        judge_model_name=r.judge_model_name if judge else u.model_name,
        judge_base_url=r.judge_base_url if judge else u.base_url,
        judge_api_key=r.judge_api_key if judge else u.api_key,
        timeout_s=u.timeout_s, max_retries=u.max_retries, cache=False)


def _load_payoffs(path: str | None) -> Any:
    from pearlpoint.game import load_payoffs

    return load_payoffs(path)


Decider = Callable[[list[Any]], Decision]
