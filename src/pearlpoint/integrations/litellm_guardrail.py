"""pearlpoint's CSA decision as a LiteLLM proxy guardrail (``pip install 'pearlpoint[litellm]'``).

The same stages as ``pearl serve``, hooked into LiteLLM's request lifecycle instead of our own HTTP
server:

* **pre_call** -- assess + decide (:class:`~pearlpoint.serve.csa.CSAEngine`), put the hidden steering
  message first in the request, remember the decision for the later hooks. When the guard policy says
  ``compose`` (a hard refusal) the upstream is never called: the composed reply is handed to LiteLLM as
  the request's ``mock_response``, so it still flows through LiteLLM's normal response path (logging,
  spend, headers, streaming) and this guardrail's post-call hooks.
* **post_call** -- the guard stage on the whole answer (trust / check / compose, one regeneration
  through LiteLLM's router), leaked steering cut, the answer replaced by the guarded one; the risk
  report goes into the response body as ``pearl`` (like ``pearl serve``) and into ``x-pearl-*`` headers.
* **streaming** -- the guard holds back a window of text and checks it before release, exactly as
  ``pearl serve`` streams (:meth:`pearlpoint.guard.Guard.astream`); unchecked text never leaves.

config.yaml::

    guardrails:
      - guardrail_name: pearl
        litellm_params:
          guardrail: pearlpoint.integrations.litellm_guardrail.PearlGuardrail
          mode: [pre_call, post_call]
          default_on: true
          guard_file: /etc/pearl/guard.yaml     # optional, the same file as `pearl serve`'s csa.guard_file

A request this guardrail cannot read (no user text: only tool results, images, empty content) is passed
through unchanged and marked ``x-pearl-guard: skipped;<why>``; nothing here raises into LiteLLM except
one clean HTTP error when the risk assessment itself fails.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from pearlpoint.integrations import require

require("litellm", "litellm.integrations.custom_guardrail")

from litellm.integrations.custom_guardrail import CustomGuardrail  # noqa: E402

log = logging.getLogger("pearlpoint.litellm")

_ROLES = ("system", "developer", "user", "assistant")
_MAX_PENDING = 10_000  # decisions waiting for their post-call hook (a failed upstream call never gets one)
_PENDING_TTL_S = 900.0


@dataclass
class _Pending:
    """What the pre-call hook decided, for the post-call / streaming / header hooks of the same call."""

    created: float
    req: Any = None  # pearlpoint.serve.schemas.ChatRequest (text-only view of the conversation)
    decision: Any = None  # pearlpoint.serve.csa.Decision
    ctx: Any = None  # pearlpoint.guard.GuardContext
    mode: str = "trust"
    leak: Any = None  # pearlpoint.serve.leak.LeakGuard
    pearl: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    outcome: Any = None  # GuardOutcome settled before the call (compose)
    params: dict[str, Any] = field(default_factory=dict)  # generation params for a regeneration
    client: str = ""  # whose conversation memory (the LiteLLM key), as `pearl serve` scopes it
    skipped: str | None = None


def text_messages(raw: Any) -> tuple[list[dict[str, str]], str | None]:
    """The conversation as plain text turns, or ``([], why)`` when there is nothing to assess.

    LiteLLM accepts far more than ``pearl serve`` does (tool turns, image parts, ``None`` content); the
    CSA decision needs only the text of the system / user / assistant turns, so everything else is
    dropped from the *assessed* view (the request sent upstream keeps it)."""
    if not isinstance(raw, list) or not raw:
        return [], "no_messages"
    out: list[dict[str, str]] = []
    for m in raw:
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            continue
        content = m.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "\n".join(str(p.get("text") or "") for p in content
                             if isinstance(p, dict) and p.get("type") in (None, "text"))
        else:
            text = ""
        out.append({"role": m["role"], "content": text})
    if not any(m["role"] == "user" and m["content"].strip() for m in out):
        return [], "no_user_text"
    return out, None


def _hook_names(event_hook: Any) -> set[str]:
    """The lifecycle events a configured ``mode`` names (a string, a list, or LiteLLM's enum values)."""
    items = event_hook if isinstance(event_hook, (list, tuple, set)) else [event_hook]
    return {str(getattr(h, "value", h)) for h in items if h is not None}


def _client_of(user_api_key_dict: Any) -> str:
    """Whose conversation memory a request reads: the LiteLLM key (hashed by LiteLLM), else its user."""
    return str(getattr(user_api_key_dict, "token", None) or getattr(user_api_key_dict, "user_id", None) or "")


def _call_id(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    cid = data.get("litellm_call_id")
    if cid:
        return str(cid)
    md = data.get("metadata")
    return str(md.get("pearl_call_id")) if isinstance(md, dict) and md.get("pearl_call_id") else None


class PearlGuardrail(CustomGuardrail):
    """Constructive Safety Alignment for every chat completion that passes a LiteLLM proxy.

    Parameters come from ``litellm_params`` in config.yaml:

    * ``guard_file`` -- guard policy YAML (the file ``pearl serve`` reads as ``csa.guard_file``);
    * ``pearl_config`` -- a ``pearl serve`` config file whose ``csa`` section (assessor, policy,
      payoffs, steering, leak filter, guard) this guardrail uses; ``guard_file`` overrides its one;
    * ``expose_pearl`` -- add the ``pearl`` report and ``x-pearl-*`` headers (default true);
    * ``warm_up`` -- load the assessor's model when LiteLLM starts (default true), not on the first call.
    """

    # our own hooks run on every lifecycle event (LiteLLM's unified apply_guardrail path is text-in /
    # text-out and cannot insert a steering message or carry a decision from pre- to post-call)
    use_native_lifecycle_hooks = True

    def __init__(self, guard_file: str | None = None, pearl_config: str | None = None,
                 expose_pearl: bool = True, warm_up: bool = True, **kwargs: Any) -> None:
        from pearlpoint.errors import ConfigError
        from pearlpoint.guard import Guard
        from pearlpoint.serve.config import ServeConfig, load_config
        from pearlpoint.serve.csa import CSAEngine

        name, hooks = kwargs.get("guardrail_name"), _hook_names(kwargs.get("event_hook"))
        if "pre_call" not in hooks:
            raise ConfigError(f"guardrail {name!r}: PearlGuardrail needs mode [pre_call, post_call] (pre_call "
                              f"decides and steers; got {sorted(hooks) or 'no mode'})")
        if "post_call" not in hooks:
            log.warning("guardrail %r: a mode without post_call steers requests but never checks an answer", name)
        cfg = load_config(pearl_config) if pearl_config else ServeConfig()
        if guard_file:
            cfg.csa.guard_file = str(guard_file)
        self.cfg = cfg
        self.expose_pearl = bool(expose_pearl)
        # the policy first: a bad guard file stops LiteLLM's start with one line naming file, line and key
        self.guard = Guard.load(cfg.csa.guard_file) if cfg.csa.guard else None
        self.engine = CSAEngine(cfg)
        if warm_up:
            self.engine.warm_up()
            if self.guard is not None:
                self.guard.warm_up()
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        super().__init__(**kwargs)

    # ---- bookkeeping --------------------------------------------------------------------------
    def _put(self, cid: str, st: _Pending) -> None:
        self._pending[cid] = st
        now = time.monotonic()
        while self._pending:
            oldest_key, oldest = next(iter(self._pending.items()))
            if len(self._pending) <= _MAX_PENDING and now - oldest.created < _PENDING_TTL_S:
                break
            self._pending.pop(oldest_key, None)

    def _get(self, data: Any, *, pop: bool = False) -> _Pending | None:
        cid = _call_id(data)
        if cid is None:
            return None
        return self._pending.pop(cid, None) if pop else self._pending.get(cid)

    # ---- pre-call: decide and steer -----------------------------------------------------------
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: Any) -> Any:
        from pearlpoint.serve.app import _latest_user, _pearl_headers
        from pearlpoint.serve.schemas import ChatRequest

        if not isinstance(data, dict) or "messages" not in data:
            return data  # embeddings, images, ...: not a chat completion
        cid = _call_id(data)
        if cid is None:
            import uuid

            cid = uuid.uuid4().hex
            if not isinstance(data.get("metadata"), dict):
                data["metadata"] = {}
            data["metadata"]["pearl_call_id"] = cid
        if isinstance(data.get("n"), int) and data["n"] > 1:
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail={"error": "pearl guardrail: only one choice per request "
                                                                  "is guarded; send n=1"})
        turns, why = text_messages(data.get("messages"))
        if why is not None:
            self._put(cid, _Pending(created=time.monotonic(), skipped=why,
                                    headers={"x-pearl-guard": f"skipped;{why}"} if self.expose_pearl else {}))
            return data
        try:
            req = ChatRequest.model_validate({"model": str(data.get("model") or "litellm"), "messages": turns})
        except Exception as exc:  # noqa: BLE001 - text_messages already filtered; belt and braces
            log.warning("pearl guardrail: conversation not assessable (%s); passing through", exc)
            self._put(cid, _Pending(created=time.monotonic(), skipped="unreadable",
                                    headers={"x-pearl-guard": "skipped;unreadable"} if self.expose_pearl else {}))
            return data
        client = _client_of(user_api_key_dict)
        decision = await self._decide(req, client)
        from pearlpoint.guard import GuardContext
        from pearlpoint.serve.leak import LeakGuard

        ctx = GuardContext.from_decision(decision, _latest_user(req))
        mode = self.guard.mode_for(ctx) if self.guard is not None else "trust"
        pearl = decision.public()
        pearl["call_id"] = cid
        st = _Pending(created=time.monotonic(), req=req, decision=decision, ctx=ctx, mode=mode, pearl=pearl, client=client,
                      leak=LeakGuard(protected=[decision.steering] if self.cfg.csa.leak_filter and
                                     decision.steering else []),
                      params={k: data[k] for k in ("temperature", "top_p", "max_tokens", "max_completion_tokens",
                                                   "seed", "stop") if data.get(k) is not None})
        if self.expose_pearl:
            st.headers.update(_pearl_headers(pearl))
            st.headers["x-pearl-guard"] = mode + (";streamed" if data.get("stream") and mode != "compose" else "")
        if mode == "compose" and self.guard is not None:
            # a hard refusal: the upstream is not asked at all (as in `pearl serve`); LiteLLM answers with
            # the composed reply through its normal response path
            st.outcome = await self.guard.arun(ctx, None)
            data["mock_response"] = st.outcome.text
            self._note(st, st.outcome)
        elif decision.steering:
            msgs = list(data["messages"])
            data["messages"] = [{"role": "system", "content": decision.steering}, *msgs]
        md = data.get("metadata")
        if isinstance(md, dict):  # JSON-only: LiteLLM logs and copies metadata
            md["pearl"] = {"level": decision.level, "strategy": decision.strategy, "guard_mode": mode}
        self._put(cid, st)
        return data

    async def _decide(self, req: Any, client: str) -> Any:
        from fastapi import HTTPException

        from pearlpoint.llm import Message

        try:
            return await self.engine.decide([Message(role=m.plain_role, content=m.text())  # type: ignore[arg-type]
                                             for m in req.messages], client=client)
        except Exception as exc:
            log.exception("pearl guardrail: CSA decision failed")
            raise HTTPException(status_code=500, detail={"error": f"pearl guardrail: risk assessment failed "
                                                                  f"({type(exc).__name__})"}) from None

    # ---- helpers shared by the post-call paths ------------------------------------------------
    def _note(self, st: _Pending, outcome: Any) -> None:
        """What the guard did, in the report and the header (as ``pearl serve``'s ``_note_guard``)."""
        st.pearl["guard"] = {k: v for k, v in outcome.as_dict().items() if k != "checks"}
        if self.expose_pearl:
            st.headers["x-pearl-guard"] = outcome.header.encode("ascii", "replace").decode()

    def _remember(self, st: _Pending, answer: str) -> None:
        """The answered turn into the engine's conversation memory, so the next turn of this conversation
        is decided with this one's decision as its prior (``pearl serve``'s ``_remember``)."""
        from pearlpoint.serve.app import _remember

        try:
            _remember(self, st.req, st.decision, answer, st.client)  # type: ignore[arg-type] - needs .engine only
        except Exception:  # noqa: BLE001 - memory is an improvement, never a reason to fail the answer
            log.warning("pearl guardrail: could not remember the turn", exc_info=True)

    def _regenerate(self, st: _Pending, data: dict) -> Any:
        """The guard's one re-steered retry, through LiteLLM's router (same model group, no proxy hooks)."""
        from pearlpoint.serve.app import _upstream_messages

        async def regenerate(extra: str) -> tuple[str, str | None]:
            from litellm.proxy.proxy_server import llm_router

            if llm_router is None:
                raise RuntimeError("LiteLLM router is not ready")
            msgs = [{"role": m.role, "content": m.content} for m in _upstream_messages(st.decision, st.req, extra)]
            resp = await llm_router.acompletion(model=data.get("model"), messages=msgs, **st.params)
            choice = resp.choices[0]
            from pearlpoint.serve.leak import GUARDED_MIN_KEPT

            text, leaked = st.leak.clean(choice.message.content or "", st.decision.lang, min_kept=GUARDED_MIN_KEPT)
            st.pearl["leak_blocked"] = bool(st.pearl.get("leak_blocked")) or leaked
            return text, choice.finish_reason

        return regenerate

    # ---- post-call: guard the whole answer ----------------------------------------------------
    async def async_post_call_success_hook(self, data: dict, user_api_key_dict: Any, response: Any) -> Any:
        st = self._get(data)
        if st is None or st.skipped or not getattr(response, "choices", None):
            return response
        try:
            choice = response.choices[0]
            message = getattr(choice, "message", None)
            if message is None:
                return response
            if st.outcome is not None:  # composed before the call: the response already carries it
                outcome = st.outcome
            elif getattr(message, "tool_calls", None) and not (message.content or "").strip():
                st.pearl["guard"] = {"mode": st.mode, "action": "skipped", "reasons": ["tool_calls"]}
                st.headers["x-pearl-guard"] = "skipped;tool_calls"
                outcome = None
            else:
                from pearlpoint.serve.leak import GUARDED_MIN_KEPT

                text, leaked = st.leak.clean(message.content or "", st.decision.lang,
                                             min_kept=GUARDED_MIN_KEPT if self.guard is not None else 0)
                st.pearl["leak_blocked"] = leaked
                finish = choice.finish_reason
                if self.guard is not None:
                    outcome = await self.guard.arun(st.ctx, self._regenerate(st, data), first=(text, finish))
                else:
                    from pearlpoint.guard import GuardOutcome

                    outcome = GuardOutcome(text=text, action="trusted", mode="trust")
                message.content = outcome.text
                if outcome.action == "composed":
                    choice.finish_reason = "stop"
                elif leaked and outcome.action not in ("regenerated",):
                    choice.finish_reason = "content_filter"
            if outcome is not None:
                self._note(st, outcome)
            self._remember(st, message.content or "")
            st.pearl.setdefault("leak_blocked", False)
            if self.expose_pearl:
                response.pearl = st.pearl
                hidden = getattr(response, "_hidden_params", None)
                if isinstance(hidden, dict):
                    hidden.setdefault("additional_headers", {})
                    hidden["additional_headers"] = {**(hidden["additional_headers"] or {}), **st.headers}
        except Exception as exc:  # noqa: BLE001 - a guard failure must not release the unchecked answer
            log.exception("pearl guardrail: post-call guard failed")
            from fastapi import HTTPException

            raise HTTPException(status_code=500, detail={"error": f"pearl guardrail: guard stage failed "
                                                                  f"({type(exc).__name__})"}) from None
        return response

    async def async_post_call_response_headers_hook(self, data: dict, user_api_key_dict: Any, response: Any,
                                                    request_headers: Any = None, **kwargs: Any) -> Any:
        st = self._get(data, pop=not (isinstance(data, dict) and data.get("stream")))
        return dict(st.headers) if st is not None and self.expose_pearl else None

    async def async_post_call_failure_hook(self, request_data: dict, original_exception: Exception,
                                           user_api_key_dict: Any, traceback_str: str | None = None) -> Any:
        self._get(request_data, pop=True)  # the upstream failed: nothing left to guard
        return None

    # ---- streaming: check before release --------------------------------------------------------
    async def async_post_call_streaming_iterator_hook(self, user_api_key_dict: Any, response: Any,
                                                      request_data: dict) -> AsyncIterator[Any]:
        st = self._get(request_data)
        try:
            if st is None or st.skipped or st.outcome is not None:
                async for chunk in response:  # passed through, or the composed reply LiteLLM is streaming
                    if st is not None and st.outcome is not None and self.expose_pearl and _finishes(chunk):
                        _attach(chunk, st.pearl)
                    yield chunk
                if st is not None and st.outcome is not None:
                    self._remember(st, st.outcome.text)
                return
            async for chunk in self._guarded_stream(st, response, request_data):
                yield chunk
        finally:
            self._get(request_data, pop=True)

    async def _guarded_stream(self, st: _Pending, response: Any, data: dict) -> AsyncIterator[Any]:
        from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

        from pearlpoint.guard import GuardOutcome
        from pearlpoint.serve.leak import StreamLeakFilter

        filt = StreamLeakFilter(st.leak, st.decision.lang)
        template: dict[str, Any] = {}
        held: list[Any] = []  # tool-call deltas: not text the guard can judge, sent after the text
        usage: list[Any] = []  # LiteLLM's usage chunk (stream_options.include_usage): sent last
        got: dict[str, Any] = {}

        async def text() -> AsyncIterator[str]:
            async for chunk in response:
                if not template:
                    template.update(id=getattr(chunk, "id", None), model=getattr(chunk, "model", None),
                                    created=getattr(chunk, "created", None))
                choices = getattr(chunk, "choices", None) or []
                delta = getattr(choices[0], "delta", None) if choices else None
                piece = getattr(delta, "content", None) if delta is not None else None
                if getattr(delta, "tool_calls", None):
                    held.append(chunk)
                elif getattr(chunk, "usage", None) is not None and not piece:
                    usage.append(chunk)
                if piece and (out := filt.feed(piece)):
                    yield out
                if filt.blocked:
                    break
            if out := filt.finish():
                yield out

        def make(delta: Any, finish: str | None = None) -> Any:
            return ModelResponseStream(id=template.get("id") or "chatcmpl-pearl", model=template.get("model"),
                                       created=template.get("created") or int(time.time()),
                                       choices=[StreamingChoices(index=0, delta=delta, finish_reason=finish)])

        first = True
        pieces = (self.guard.astream(st.ctx, text(), regenerate=self._regenerate(st, data),
                                     on_done=lambda o: got.__setitem__("outcome", o))
                  if self.guard is not None else text())
        sent: list[str] = []
        async for piece in pieces:
            if not piece:
                continue
            sent.append(piece)
            yield make(Delta(role="assistant", content=piece) if first else Delta(content=piece))
            first = False
        for chunk in held:
            yield chunk
        outcome = got.get("outcome") or GuardOutcome(text="".join(sent), action="trusted", mode="trust")
        self._note(st, outcome)
        self._remember(st, "".join(sent))
        blocked = filt.blocked or bool(st.pearl.get("leak_blocked"))
        st.pearl["leak_blocked"] = blocked
        final = make(Delta(), "content_filter" if blocked and outcome.action not in ("composed", "regenerated")
                     else "stop")
        if self.expose_pearl:
            _attach(final, st.pearl)
        yield final
        for chunk in usage[-1:]:  # the upstream's token counts (the guarded text may be shorter or composed)
            yield chunk


def _attach(chunk: Any, pearl: dict[str, Any]) -> None:
    """Put the report on a stream chunk as a top-level ``pearl`` field (as ``pearl serve`` does). A
    non-None ``provider_specific_fields`` makes LiteLLM serialize the chunk in full, extra fields
    included, instead of its fast path for plain text chunks."""
    chunk.pearl = pearl
    if getattr(chunk, "provider_specific_fields", None) is None:
        chunk.provider_specific_fields = {}


def _finishes(chunk: Any) -> bool:
    choices = getattr(chunk, "choices", None) or []
    return bool(choices) and getattr(choices[0], "finish_reason", None) is not None


__all__ = ["PearlGuardrail", "text_messages"]
