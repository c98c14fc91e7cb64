"""The OpenAI-compatible CSA proxy as a FastAPI app.

One request: authenticate -> rate-limit -> read a bounded body -> validate -> **decide** (assess,
solve, steer; in a thread pool) -> **generate** (the upstream with a hidden steering message,
optionally refined with Lingo-BP; leaked steering text cut) -> **guard** (trust, check or compose, by
the guard policy; streams are checked window by window before release) -> answer (JSON or SSE) ->
metrics + audit. The handler keeps HTTP, auth, limits and audit; the stages do the rest.

Everything a config reload may change lives in :class:`ServeState`, swapped atomically; a request
keeps the state it started with, so a reload never changes a request half-way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import signal
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from pearlpoint.errors import PearlError
from pearlpoint.guard import Guard, GuardContext, GuardOutcome
from pearlpoint.llm import GenerationParams, Message, get_model
from pearlpoint.serve.audit import AuditEntry, AuditLog, conversation_hash
from pearlpoint.serve.auth import KeyRing, verify_key
from pearlpoint.serve.config import ServeConfig, load_config
from pearlpoint.serve.csa import CSAEngine, Decision, EngineClosed
from pearlpoint.serve.jsonguard import json_depth_exceeds
from pearlpoint.serve.leak import GUARDED_MIN_KEPT, LeakGuard, StreamLeakFilter
from pearlpoint.serve.metrics import ServeMetrics
from pearlpoint.serve.metrics_access import metrics_access
from pearlpoint.serve.schemas import (
    ChatRequest,
    chunk_body,
    completion_body,
    describe_validation_error,
    error_body,
    new_completion_id,
)

log = logging.getLogger("pearlpoint.serve")


class ApiError(Exception):
    """An error answered to the client as an OpenAI-style body."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}


@dataclass
class ServeState:
    cfg: ServeConfig
    keyring: KeyRing
    engine: CSAEngine
    upstream: Any
    judge: Any
    audit: AuditLog | None
    guard: Guard | None = None
    version: int = 1
    secrets: list[str] = field(default_factory=list)
    # in-flight requests holding this state; a replaced state closes what it alone owns at zero
    _users: int = 0
    _on_drained: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self) -> None:
        with self._lock:
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            run = self._on_drained if self._users <= 0 else None
            if run is not None:
                self._on_drained = None
        if run is not None:
            run()

    def retire(self, close: Any, grace_s: float) -> None:
        """Run ``close`` once the last request using this state is done, or after ``grace_s`` at most
        (a request stuck that long gets a clean 503 from a closed engine instead of hanging)."""
        done = threading.Event()

        def once() -> None:
            if not done.is_set():
                done.set()
                close()

        with self._lock:
            if self._users > 0:
                self._on_drained = once
                timer = threading.Timer(grace_s, once)
                timer.daemon = True
                timer.start()
                return
        once()


def build_upstream(cfg: ServeConfig) -> Any:
    u = cfg.upstream
    return get_model(u.model, base_url=u.base_url, model_name=u.model_name, api_key=u.api_key,
                     timeout_s=u.timeout_s, max_retries=u.max_retries, concurrency=u.concurrency, cache=False,
                     budget_calls=None, budget_tokens=None)


def build_judge(cfg: ServeConfig, upstream: Any) -> Any:
    r = cfg.refine
    if r.steps == 0 or r.judge_model is None:
        return upstream
    return get_model(r.judge_model, base_url=r.judge_base_url, model_name=r.judge_model_name,
                     api_key=r.judge_api_key, cache=False)


def _audit_log(cfg: ServeConfig, metrics: ServeMetrics) -> AuditLog:
    return AuditLog(cfg.audit.path, store_text=cfg.audit.store_text, max_queue=cfg.audit.max_queue,
                    on_drop=metrics.audit_dropped.inc, file_mode=cfg.audit.file_mode, dir_mode=cfg.audit.dir_mode)


def build_guard(cfg: ServeConfig) -> Guard | None:
    """The guard stage for this config (None when ``csa.guard`` is off). Raises ConfigError naming the
    file, line and key of a bad guard policy or resources file."""
    return Guard.load(cfg.csa.guard_file) if cfg.csa.guard else None


def _secrets(cfg: ServeConfig) -> list[str]:
    return [s for s in (cfg.upstream.api_key, cfg.refine.judge_api_key) if s]


class Proxy:
    """Owns the app, the metrics (which survive reloads) and the current :class:`ServeState`."""

    def __init__(self, cfg: ServeConfig, *, engine: CSAEngine | None = None, upstream: Any = None,
                 warm_up: bool = True, install_sighup: bool = False, overrides: dict[str, Any] | None = None) -> None:
        self.metrics = ServeMetrics()
        self.overrides = dict(overrides or {})  # command-line settings, re-applied on every reload
        self.started = time.time()
        self.bind_host: str | None = None  # set by the server that listens (serve_forever, ServerThread)
        self.install_sighup = install_sighup
        self._reload_lock = threading.Lock()
        self._borrowed_engine = engine  # an engine passed in belongs to the caller: never closed here
        engine = engine or CSAEngine(cfg)
        if warm_up:
            engine.warm_up()
        upstream = upstream if upstream is not None else build_upstream(cfg)
        guard = build_guard(cfg)
        if warm_up and guard is not None:
            guard.warm_up()
        audit = _audit_log(cfg, self.metrics) if cfg.audit.enabled else None
        self.state = ServeState(cfg=cfg, keyring=KeyRing(cfg.auth), engine=engine, upstream=upstream,
                                judge=build_judge(cfg, upstream), audit=audit, guard=guard,
                                secrets=_secrets(cfg))
        if not cfg.auth.keys and not cfg.auth.allow_anonymous:
            log.warning("no client keys configured and auth.allow_anonymous is false: every request gets 401")
        self.app = create_app(self)

    # ---- reload -------------------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Re-read the config file and swap state. A bad file leaves the running config untouched."""
        with self._reload_lock:
            old = self.state
            if old.cfg.source is None:
                raise PearlError("this server was started without a config file; nothing to reload")
            try:
                cfg = load_config(old.cfg.source, **self.overrides)
                if cfg.csa == old.cfg.csa:
                    engine = old.engine
                else:
                    engine = CSAEngine(cfg, memory=old.engine.memory)
                    engine.warm_up()
                upstream = old.upstream if cfg.upstream == old.cfg.upstream else build_upstream(cfg)
                audit = old.audit
                if cfg.audit != old.cfg.audit:
                    audit = _audit_log(cfg, self.metrics) if cfg.audit.enabled else None
                guard = build_guard(cfg)  # re-read every time: the file may change under the same path
                keyring = KeyRing(cfg.auth)
                keyring.carry_buckets_from(old.keyring)
                new = ServeState(cfg=cfg, keyring=keyring, engine=engine, upstream=upstream,
                                 judge=build_judge(cfg, upstream), audit=audit, guard=guard,
                                 version=old.version + 1, secrets=_secrets(cfg))
            except PearlError as exc:
                self.metrics.reloads.inc(result="error")
                log.error("config reload failed, keeping version %d: %s", old.version, exc)
                raise
            self.state = new
            old_audit = old.audit if audit is not old.audit else None
            old_engine = old.engine if engine is not old.engine and old.engine is not self._borrowed_engine else None

            def close_old() -> None:
                if old_engine is not None:
                    old_engine.close()
                if old_audit is not None:
                    old_audit.close()
            # requests started on the old state still decide and audit with it: drain, then close
            old.retire(close_old, grace_s=cfg.drain_grace_s)
            self.metrics.reloads.inc(result="ok")
            log.info("config reloaded from %s (version %d)", cfg.source, new.version)
            return {"status": "reloaded", "version": new.version, "source": cfg.source,
                    "keys": len(cfg.auth.keys), "models": cfg.models}

    async def areload(self) -> dict[str, Any]:
        return await asyncio.get_running_loop().run_in_executor(None, self.reload)

    def close(self) -> None:
        if self.state.audit is not None:
            self.state.audit.close()
        if self.state.engine is not self._borrowed_engine:
            self.state.engine.close()


# ---- helpers ----------------------------------------------------------------------------------
def _bearer(headers: Any) -> str | None:
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return headers.get("x-api-key") or None


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in ("localhost", "testclient")


async def _read_body(request: Any, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is {int(declared)} bytes; this server accepts at most {limit}",
                       code="request_too_large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body exceeds {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_request(raw: bytes, cfg: ServeConfig) -> ChatRequest:
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object with 'model' and 'messages'",
                       code="invalid_json")
    too_deep = json_depth_exceeds(raw, cfg.limits.max_json_depth)
    if too_deep is not None:  # json.loads would recurse once per level (RecursionError, a 500)
        raise ApiError(400, f"request body nests JSON deeper than {cfg.limits.max_json_depth} levels "
                       "(limits.max_json_depth)", code="json_too_deep")
    try:
        data = json.loads(raw)
    except RecursionError:  # a parser that recurses more than the scan counts: still the client's fault
        raise ApiError(400, "request body nests JSON too deeply to parse", code="json_too_deep") from None
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not UTF-8 text", code="invalid_json") from None
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                       code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(data).__name__}", code="invalid_json")
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as exc:
        msg, param = describe_validation_error(exc)
        raise ApiError(422, msg, param=param, code="invalid_value") from None
    lim = cfg.limits
    if len(req.messages) > lim.max_messages:
        raise ApiError(413, f"{len(req.messages)} messages; this server accepts at most {lim.max_messages}",
                       param="messages", code="too_many_messages")
    for i, m in enumerate(req.messages):
        if len(m.text()) > lim.max_message_chars:
            raise ApiError(413, f"messages[{i}] has {len(m.text())} characters; the limit is {lim.max_message_chars}",
                           param=f"messages.{i}.content", code="message_too_long")
    if req.model not in cfg.models:
        raise ApiError(404, f"model '{req.model}' does not exist on this server; available: {', '.join(cfg.models)}",
                       param="model", code="model_not_found")
    return req


def _exception_chain(exc: BaseException) -> list[BaseException]:
    out, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        out.append(cur)
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return out


def classify_upstream_error(exc: BaseException, timeout_s: float) -> ApiError:
    """Map a model-layer failure to 504 (too slow) or 502 (down / broken), without upstream details."""
    chain = _exception_chain(exc)
    text = " ".join(str(e).lower() for e in chain)
    if any(isinstance(e, (TimeoutError, asyncio.TimeoutError)) for e in chain) or any(
            s in text for s in ("timed out", "no answer within", "stalled", "timeout")):
        return ApiError(504, f"the upstream model did not answer in time (limit {timeout_s:g} s); try again later",
                        code="upstream_timeout")
    if "cannot reach" in text or "connection" in text:
        return ApiError(502, "the upstream model is unreachable; try again later", code="upstream_unreachable")
    return ApiError(502, "the upstream model returned an error or an invalid answer", code="upstream_bad_response")


def _upstream_kind(err: ApiError) -> str:
    return {"upstream_timeout": "timeout", "upstream_unreachable": "unreachable"}.get(err.code or "", "bad_response")


def _pearl_headers(pearl: dict[str, Any]) -> dict[str, str]:
    ut = pearl.get("user_types", {})
    h = {
        "x-pearl-category": str(pearl.get("category")),
        "x-pearl-level": str(pearl.get("level")),
        "x-pearl-intent": str(pearl.get("intent")),
        "x-pearl-strategy": str(pearl.get("strategy")),
        "x-pearl-user-types": ",".join(f"{k}={v:.3f}" for k, v in ut.items()),
        "x-pearl-escalation": "1" if pearl.get("escalation") else "0",
    }
    return {k: v.encode("ascii", "replace").decode() for k, v in h.items()}


def _upstream_messages(decision: Decision, req: ChatRequest, extra: str = "") -> list[Any]:
    """The conversation for the upstream: the hidden steering first (plus, on a guard regeneration,
    the checker's reasons as stronger steering)."""
    msgs = []
    base = decision.steering
    if extra and decision.level == "R0" and decision.strategy == "full_answer":
        base = ""  # a benign question's retry: a small model answers better without the long steering
    steering = "\n\n".join(x for x in (base, extra) if x)
    if steering:
        msgs.append(Message(role="system", content=steering))
    for m in req.messages:
        msgs.append(Message(role=m.plain_role, content=m.text()))  # type: ignore[arg-type]
    return msgs


def _latest_user(req: ChatRequest) -> str:
    return next((m.text() for m in reversed(req.messages) if m.plain_role == "user"), "")


_BACKGROUND: set[asyncio.Task] = set()


def _in_background(coro: Any) -> None:
    """Run ``coro`` without waiting for it (the set keeps the task alive until it is done)."""
    task = asyncio.ensure_future(coro)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


def _guard_context(decision: Decision, req: ChatRequest) -> GuardContext:
    return GuardContext.from_decision(decision, _latest_user(req))


def _note_guard(metrics: ServeMetrics, pearl: dict, audit: AuditEntry, headers: dict | None,
                outcome: GuardOutcome, expose: bool) -> None:
    """Say what the guard did, in every place a user or operator looks: pearl, header, audit, metrics."""
    metrics.guard_actions.inc(action=outcome.action)
    for r in outcome.reasons:
        if not r.startswith(("policy:", "no_upstream")):
            metrics.guard_failures.inc(reason=r)
    summary = {"mode": outcome.mode, "action": outcome.action, "reasons": outcome.reasons,
               "elapsed_ms": round(outcome.elapsed_ms, 2), "upstream_calls": outcome.upstream_calls}
    pearl["guard"] = summary
    audit.scores = {**(audit.scores or {}), "guard": summary}
    if headers is not None and expose:
        headers["x-pearl-guard"] = outcome.header.encode("ascii", "replace").decode()


def _should_refine(cfg: ServeConfig, decision: Decision) -> bool:
    return cfg.refine.steps > 0 and decision.level in cfg.refine.levels


async def _refine(state: ServeState, req: ChatRequest, decision: Decision, max_tokens: int) -> tuple[str, dict]:
    """Lingo-BP refinement; returns the chosen answer and its judge scores."""
    from pearlpoint.lingo import LingoConfig, respond_async

    query = [Message(role=m.plain_role, content=m.text()) for m in req.messages  # type: ignore[arg-type]
             if m.plain_role in ("user", "assistant")]
    kw: dict[str, Any] = {"steps": state.cfg.refine.steps, "beta": state.cfg.csa.beta}
    try:
        lcfg = LingoConfig(**kw, max_tokens=max_tokens)
    except (TypeError, ValidationError):
        lcfg = LingoConfig(**kw)
    # the proxy already assessed and solved: Lingo-BP starts from the same decision
    record = await respond_async(query, generator=state.upstream, judge=state.judge,
                                 assessor=state.engine.assessor, config=lcfg, lang=decision.lang,
                                 assessment=decision.assessment, solution=decision.solution)
    chosen = record.chosen
    if chosen is None or not (chosen.answer or "").strip():
        raise PearlError(f"refinement produced no usable answer ({record.error or 'all iterates failed'})")
    scores = {"satisfaction": chosen.satisfaction, "safety": chosen.safety,
              "iterates": len(record.iterates), "chosen_index": record.chosen_index}
    return chosen.answer, scores


# ---- the app ----------------------------------------------------------------------------------
def create_app(proxy: Proxy) -> Any:
    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        if proxy.install_sighup and threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGHUP"):
            loop = asyncio.get_running_loop()

            def on_hup() -> None:
                async def go() -> None:
                    try:
                        await proxy.areload()
                    except PearlError as exc:
                        log.error("SIGHUP reload failed: %s", exc)
                loop.create_task(go())

            loop.add_signal_handler(signal.SIGHUP, on_hup)
        yield
        proxy.close()

    app = FastAPI(title="pearlpoint CSA proxy", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None)
    metrics = proxy.metrics

    def err(e: ApiError) -> Any:
        return JSONResponse(error_body(e.status, e.message, param=e.param, code=e.code), status_code=e.status,
                            headers=e.headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Any:
        return err(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Any:
        msg = {404: "no such route", 405: "method not allowed on this route"}.get(exc.status_code, str(exc.detail))
        return err(ApiError(exc.status_code, msg))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Any:
        log.error("unexpected error: %s", exc, exc_info=exc)
        return err(ApiError(500, f"internal error ({type(exc).__name__}); the server logged the details",
                            code="internal_error"))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Any:
        return err(ApiError(422, str(exc.errors()[0].get("msg", "invalid request"))))

    app.add_middleware(_ObserveMiddleware, metrics=metrics)

    async def authenticate(request: Request, state: ServeState) -> Any:
        ip = request.client.host if request.client else "unknown"
        wait = state.keyring.failure_wait(ip)
        if wait > 0:
            metrics.auth_failures.inc()
            metrics.rate_limited.inc()
            raise ApiError(429, f"too many failed authentications from this address; retry in {wait:.1f} s",
                           code="rate_limit_exceeded", headers={"Retry-After": str(max(1, int(wait + 0.999)))})
        client = await state.keyring.aidentify(_bearer(request.headers))
        if client is None:
            metrics.auth_failures.inc()
            state.keyring.note_failure(ip)
            raise ApiError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        return client

    @app.get("/healthz")
    async def healthz() -> Any:
        st = proxy.state
        return {"status": "ok", "config_version": st.version, "uptime_s": round(time.time() - proxy.started, 1),
                "models": st.cfg.models, "upstream": st.cfg.upstream.model}

    @app.get("/metrics")
    async def prom(request: Request) -> Any:
        st = proxy.state
        mc = st.cfg.metrics
        verdict = metrics_access(key_hash=mc.key_hash, public=mc.public, bind_host=proxy.bind_host,
                                 peer=request.client.host if request.client else None)
        if verdict.need == "metrics_key":
            ip = request.client.host if request.client else "unknown"
            if st.keyring.failure_wait(ip) > 0 or not await asyncio.to_thread(
                    verify_key, _bearer(request.headers) or "", mc.key_hash or ""):
                metrics.auth_failures.inc()
                st.keyring.note_failure(ip)
                raise ApiError(401, "/metrics needs the metrics key (metrics.key_hash): send 'Authorization: "
                               "Bearer <key>'", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        elif verdict.need == "admin_key":
            client = await authenticate(request, st)
            if not client.admin:
                raise ApiError(403, "/metrics on a non-loopback bind needs an admin key (or set metrics.key_hash)",
                               code="forbidden")
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        st = proxy.state
        await authenticate(request, st)
        return {"object": "list", "data": [{"id": m, "object": "model", "created": int(proxy.started),
                                            "owned_by": "pearlpoint"} for m in st.cfg.models]}

    @app.post("/admin/reload")
    async def admin_reload(request: Request) -> Any:
        st = proxy.state
        if st.keyring.open:
            if not _is_loopback(request.client.host if request.client else None):
                raise ApiError(403, "reload without keys is allowed from loopback only", code="forbidden")
        else:
            client = await authenticate(request, st)
            if not client.admin:
                raise ApiError(403, f"key '{client.name}' is not an admin key", code="forbidden")
        try:
            return await proxy.areload()
        except PearlError as exc:
            raise ApiError(400, f"reload failed, still running config version {st.version}: {exc}",
                           code="reload_failed") from None

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        st = proxy.state
        st.acquire()
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                st.release()
        try:
            return await _chat(request, st, release)
        except BaseException:
            release()
            raise

    async def _chat(request: Request, st: ServeState, release: Any) -> Any:
        t0 = time.perf_counter()
        rid = uuid.uuid4().hex[:16]
        client = await authenticate(request, st)
        wait = st.keyring.take(client)
        if wait > 0:
            metrics.rate_limited.inc()
            raise ApiError(429, f"rate limit for key '{client.name}' exceeded; retry in {max(wait, 0.01):.2f} s",
                           code="rate_limit_exceeded", headers={"Retry-After": str(max(1, int(wait + 0.999)))})
        req = _parse_request(await _read_body(request, st.cfg.limits.max_body_bytes), st.cfg)
        lim = st.cfg.limits
        max_tokens = min(req.max_completion_tokens or req.max_tokens or lim.default_max_tokens, lim.max_tokens_cap)
        params = GenerationParams(temperature=lim.default_temperature if req.temperature is None else req.temperature,
                                  max_tokens=max_tokens, top_p=req.top_p or 1.0, seed=req.seed,
                                  stop=req.stop_list())
        metrics.inflight.inc()
        handed_to_stream = False
        audit = AuditEntry(request_id=rid, client=client.name, model=req.model,
                           prompt_hash=conversation_hash([{"role": m.role, "content": m.text()} for m in req.messages]),
                           conversation=json.dumps([{"role": m.role, "content": m.text()} for m in req.messages],
                                                   ensure_ascii=False),
                           turns=sum(1 for m in req.messages if m.role == "user"), stream=req.stream)
        try:
            t = time.perf_counter()
            try:
                decision = await st.engine.decide(
                    [Message(role=m.plain_role, content=m.text()) for m in req.messages],  # type: ignore[arg-type]
                    client=client.name)
            except EngineClosed:
                raise ApiError(503, "the server is reloading its configuration; retry the request",
                               code="service_unavailable", headers={"Retry-After": "1"}) from None
            except Exception as exc:
                log.exception("CSA decision failed")
                raise ApiError(500, f"risk assessment failed: {type(exc).__name__}", code="csa_failed") from None
            metrics.stage.observe(time.perf_counter() - t, stage="decide")
            for stage, secs in decision.timings.items():
                metrics.stage.observe(secs, stage=stage)
            metrics.decisions.inc(level=decision.level, strategy=decision.strategy)
            pearl = decision.public()
            pearl["request_id"] = rid
            _fill_audit(audit, decision)
            leak = LeakGuard(protected=[decision.steering] if st.cfg.csa.leak_filter and decision.steering else [],
                             secrets=st.secrets)
            upstream_msgs = _upstream_messages(decision, req)
            refine = _should_refine(st.cfg, decision)
            headers = {"x-pearl-request-id": rid}
            if st.cfg.expose_pearl:
                headers.update(_pearl_headers(pearl))
            ctx = _guard_context(decision, req)
            mode = st.guard.mode_for(ctx) if st.guard is not None else "trust"
            if st.guard is not None and mode == "check":
                _in_background(asyncio.to_thread(st.guard.prepare, ctx))  # while the upstream writes
            if req.stream:
                response = await _stream_response(proxy, st, req, decision, pearl, leak, upstream_msgs, params,
                                                  refine, headers, audit, t0, release, ctx=ctx, mode=mode)
                handed_to_stream = True  # the stream body now owns metrics and audit
                return response
            usage = (0, 0)
            leaked = False

            async def regenerate(extra: str) -> tuple[str, str | None]:
                nonlocal leaked
                text2, finish2, _u = await _complete(proxy, st, req, decision, {"scores": {}},
                                                     _upstream_messages(decision, req, extra), params, False, audit)
                text2, leaked2 = leak.clean(text2, decision.lang, min_kept=GUARDED_MIN_KEPT)
                leaked = leaked or leaked2
                return text2, finish2

            if mode == "compose":
                pearl["refine_steps"] = 0
                outcome = await st.guard.arun(ctx, None)  # type: ignore[union-attr]
                text, finish = outcome.text, "stop"
            else:
                text, finish, usage = await _complete(proxy, st, req, decision, pearl, upstream_msgs, params,
                                                      refine, audit)
                text, leaked = leak.clean(text, decision.lang,
                                          min_kept=GUARDED_MIN_KEPT if st.guard is not None else 0)
                if st.guard is not None:
                    t = time.perf_counter()
                    outcome = await st.guard.arun(ctx, regenerate, first=(text, finish))
                    metrics.stage.observe(time.perf_counter() - t, stage="guard")
                    if outcome.action != "passed":
                        text, finish = outcome.text, ("stop" if outcome.action == "composed" else finish)
                else:
                    outcome = GuardOutcome(text=text, action="trusted", mode="trust")
            if leaked:
                metrics.leaks.inc()
                if outcome.action not in ("composed", "regenerated"):
                    finish = "content_filter"
            _note_guard(metrics, pearl, audit, headers, outcome, st.cfg.expose_pearl)
            pearl["leak_blocked"] = leaked
            _remember(st, req, decision, text, client.name)
            audit.answer, audit.leak_blocked, audit.status = text, leaked, 200
            body = completion_body(cid=new_completion_id(), model=req.model, text=text, finish_reason=finish,
                                   prompt_tokens=usage[0], completion_tokens=usage[1],
                                   pearl=pearl if st.cfg.expose_pearl else None)
            return JSONResponse(body, headers=headers)
        except ApiError as e:
            audit.status, audit.error = e.status, e.message
            raise
        except Exception as e:
            audit.status, audit.error = 500, f"{type(e).__name__}: {e}"[:500]
            raise
        finally:
            if not handed_to_stream:
                metrics.inflight.dec()
                audit.latency_ms = (time.perf_counter() - t0) * 1000
                if st.audit is not None and audit.level is not None:
                    st.audit.record(audit)
                release()

    return app


_ROUTES = {"/v1/chat/completions", "/v1/models", "/healthz", "/metrics", "/admin/reload"}


class _ObserveMiddleware:
    """Counts requests by route and status and times them. Plain ASGI (no per-request task or stream)."""

    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        route = scope["path"] if scope["path"] in _ROUTES else "other"
        status = {"code": 500}

        async def send_and_note(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self.metrics.requests.inc(route=route, status=str(status["code"]))
            self.metrics.latency.observe(time.perf_counter() - t0, route=route)


def _fill_audit(audit: AuditEntry, d: Decision) -> None:
    a = d.assessment
    audit.language, audit.category, audit.level = d.lang, a.category, d.level
    audit.intent = str(getattr(a.intent, "value", a.intent))
    audit.strategy = d.strategy
    audit.posterior = a.user_types.as_dict()
    audit.scores = {"escalation": d.escalation, **d.public().get("scores", {})}


def _remember(st: ServeState, req: ChatRequest, d: Decision, answer: str, client: str) -> None:
    turns = [(m.plain_role, m.text()) for m in req.messages if m.plain_role in ("user", "assistant")]
    st.engine.memory.remember(turns + [("assistant", answer)], d.prior_record(), client)


async def _complete(proxy: Proxy, st: ServeState, req: ChatRequest, decision: Decision, pearl: dict, msgs: list,
                    params: Any, refine: bool, audit: AuditEntry) -> tuple[str, str, tuple[int, int]]:
    metrics = proxy.metrics
    u = st.cfg.upstream
    deadline = u.timeout_s * (u.max_retries + 1) + 5
    t = time.perf_counter()
    try:
        res = await asyncio.wait_for(st.upstream.chat(msgs, params=params), timeout=deadline)
    except (asyncio.CancelledError, ApiError):
        raise
    except Exception as exc:
        e = classify_upstream_error(exc, u.timeout_s)
        metrics.upstream_errors.inc(kind=_upstream_kind(e))
        log.warning("upstream failed (%s): %s", e.code, exc)
        audit.error = str(exc)[:500]
        raise e from None
    metrics.stage.observe(time.perf_counter() - t, stage="upstream")
    text, finish = res.text, res.finish_reason or "stop"
    usage = (res.usage.prompt_tokens, res.usage.completion_tokens)
    pearl["refine_steps"] = 0
    if refine:
        t = time.perf_counter()
        try:
            text, scores = await _refine(st, req, decision, params.max_tokens)
            pearl["scores"].update({k: v for k, v in scores.items() if v is not None})
            pearl["refine_steps"] = st.cfg.refine.steps
            audit.refine_steps = st.cfg.refine.steps
            audit.scores = {**(audit.scores or {}), **scores}
            finish = "stop"
        except Exception as exc:  # refinement is an improvement, never a reason to fail the request
            log.warning("refinement failed, answering with the steered draft: %s", exc)
            pearl["refine_error"] = type(exc).__name__
        metrics.stage.observe(time.perf_counter() - t, stage="refine")
    return text, finish, usage


def _sse(obj: Any) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


async def _stream_response(proxy: Proxy, st: ServeState, req: ChatRequest, decision: Decision, pearl: dict,
                           leak: LeakGuard, msgs: list, params: Any, refine: bool, headers: dict,
                           audit: AuditEntry, t0: float, release: Any = None, *, ctx: GuardContext,
                           mode: str = "trust") -> Any:
    """Start the upstream stream BEFORE answering, so a dead upstream is still a clean 502/504.

    With the guard in ``check`` mode the text goes upstream -> leak filter -> guard window -> client:
    nothing reaches the client before the checker has seen it."""
    metrics = proxy.metrics
    u = st.cfg.upstream
    cid, created = new_completion_id(), int(time.time())
    pearl_out = pearl if st.cfg.expose_pearl else None
    t_up = time.perf_counter()
    guard = st.guard
    filt = StreamLeakFilter(leak, decision.lang,
                            min_kept=GUARDED_MIN_KEPT if guard is not None and mode != "trust" else 0)
    flags = {"leaked": False}

    async def regenerate(extra: str) -> tuple[str, str | None]:
        text2, finish2, _u = await _complete(proxy, st, req, decision, {"scores": {}},
                                             _upstream_messages(decision, req, extra), params, False, audit)
        text2, leaked2 = leak.clean(text2, decision.lang, min_kept=GUARDED_MIN_KEPT)
        flags["leaked"] = flags["leaked"] or leaked2
        return text2, finish2

    decided: GuardOutcome | None = None  # an answer settled before the stream starts
    source: Any = None
    first: str | None = None
    pearl["refine_steps"] = 0
    if mode == "compose" and guard is not None:
        decided = await guard.arun(ctx, None)
    elif refine:
        text, finish, _usage = await _complete(proxy, st, req, decision, pearl, msgs, params, True, audit)
        text, flags["leaked"] = leak.clean(text, decision.lang, min_kept=GUARDED_MIN_KEPT if guard is not None else 0)
        decided = (await guard.arun(ctx, regenerate, first=(text, finish)) if guard is not None
                   else GuardOutcome(text=text, action="trusted", mode="trust"))
    else:
        source = st.upstream.stream(msgs, params=params)
        try:
            first = await asyncio.wait_for(source.__anext__(), timeout=u.timeout_s * (u.max_retries + 1) + 5)
        except StopAsyncIteration:
            first = ""
        except Exception as exc:
            e = classify_upstream_error(exc, u.timeout_s)
            metrics.upstream_errors.inc(kind=_upstream_kind(e))
            log.warning("upstream stream failed (%s): %s", e.code, exc)
            audit.error = str(exc)[:500]
            await _aclose(source)
            raise e from None
    if decided is not None:
        _note_guard(metrics, pearl, audit, headers, decided, st.cfg.expose_pearl)
    elif st.cfg.expose_pearl:
        headers["x-pearl-guard"] = f"{mode};streamed" if guard is not None else "trusted"

    async def upstream_text() -> AsyncIterator[str]:
        """The upstream's pieces with leaked steering cut."""
        try:
            if first and (out := filt.feed(first)):
                yield out
            async for piece in source:
                if out := filt.feed(piece):
                    yield out
                if filt.blocked:
                    break
            if out := filt.finish():
                yield out
        finally:  # closed early (a guard failure, a client gone): free the upstream's slot now
            await _aclose(source)

    async def body() -> AsyncIterator[bytes]:
        answer: list[str] = []
        finished = False
        got: dict[str, GuardOutcome] = {}

        def finalize(status: int) -> None:
            """Audit, memory and metrics, done BEFORE the final [DONE] so a client that sends the next
            turn (or reads the audit log) right away already sees this one."""
            nonlocal finished
            if finished:
                return
            finished = True
            text = "".join(answer)
            audit.answer, audit.leak_blocked, audit.status = text, filt.blocked or flags["leaked"], status
            audit.latency_ms = (time.perf_counter() - t0) * 1000
            if status == 200:
                _remember(st, req, decision, text, audit.client)
            metrics.inflight.dec()
            if st.audit is not None:
                st.audit.record(audit)
            if release is not None:
                release()

        def emit(text: str) -> bytes | None:
            if not text:
                return None
            answer.append(text)
            return _sse(chunk_body(cid=cid, model=req.model, created=created, delta={"content": text}))

        try:
            yield _sse(chunk_body(cid=cid, model=req.model, created=created,
                                  delta={"role": "assistant", "content": ""}, pearl=pearl_out))
            if decided is not None:
                pieces: AsyncIterator[str] = _aiter_pieces(decided.text)
            elif guard is None or mode == "trust":
                pieces = upstream_text()
            else:
                pieces = guard.astream(ctx, upstream_text(), regenerate=regenerate,
                                       on_done=lambda o: got.__setitem__("outcome", o))
            try:
                async for piece in pieces:
                    if b := emit(piece):
                        yield b
            except Exception as exc:  # mid-stream failure: tell the client in-band, then end cleanly
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # the client went away: closing the upstream stream mid-read can raise its own
                    # error (e.g. "aclose(): asynchronous generator is already running"); not a 502
                    raise asyncio.CancelledError from exc
                e = classify_upstream_error(exc, u.timeout_s)
                metrics.upstream_errors.inc(kind=_upstream_kind(e))
                audit.error = str(exc)[:500]
                if guard is None or mode == "trust":
                    if b := emit(filt.finish()):
                        yield b
                yield _sse(error_body(e.status, e.message, code=e.code))
                finalize(e.status)
                yield b"data: [DONE]\n\n"
                return
            metrics.stage.observe(time.perf_counter() - t_up, stage="upstream")
            outcome = decided or got.get("outcome") or GuardOutcome(text="".join(answer), action="trusted",
                                                                      mode="trust")
            if decided is None:
                _note_guard(metrics, pearl, audit, None, outcome, st.cfg.expose_pearl)
            blocked = filt.blocked or flags["leaked"]
            finish = "stop"
            if blocked:
                metrics.leaks.inc()
                if outcome.action not in ("composed", "regenerated"):
                    finish = "content_filter"
            final_pearl = None
            if pearl_out is not None:
                final_pearl = {"leak_blocked": blocked, "refine_steps": pearl.get("refine_steps", 0),
                               "scores": pearl.get("scores"), "guard": pearl.get("guard")}
            yield _sse(chunk_body(cid=cid, model=req.model, created=created, delta={}, finish_reason=finish,
                                  pearl=final_pearl))
            if req.stream_options and req.stream_options.include_usage:
                text = "".join(answer)
                usage = {"prompt_tokens": sum(len(m.content) for m in msgs) // 4,
                         "completion_tokens": len(text) // 4}
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                yield _sse(chunk_body(cid=cid, model=req.model, created=created, delta={}, usage=usage,
                                      empty_choices=True))
            finalize(200)
            yield b"data: [DONE]\n\n"
        finally:
            if source is not None:
                await _aclose(source)
            finalize(499)  # only if we never got to the end: the client went away mid-stream

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _aiter_pieces(text: str, size: int = 24) -> AsyncIterator[str]:
    for i in range(0, len(text), size):
        yield text[i:i + size]


async def _aclose(agen: Any) -> None:
    close = getattr(agen, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception:  # noqa: BLE001 - closing a broken stream must not mask the real error
            pass
