"""Scale-out: the same batch, with rows answered by Ray actors spread over a cluster.

The driver keeps everything that must be exactly-once: it streams the input, skips finished rows,
bounds the rows in flight and writes every record (fsync) to ``RUN_DIR/records-<worker>.jsonl``.
The actors only answer: each is an async actor that builds its own models against one
OpenAI-compatible endpoint (``--endpoint``, repeatable: e.g. one per vLLM replica) and runs
:func:`pearlpoint.lingo.respond_async` on up to ``concurrency`` rows at once. Because only the driver
writes, the run directory needs no shared filesystem, and a crashed driver is resumed exactly like
a local run. A dead actor turns its in-flight rows into failure records (``--retry-failed`` redoes
them). The call budget is checked by the driver before each row is dispatched, so a run may
overshoot it by the rows already in flight.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pearlpoint.errors import BudgetExceeded, ConfigError
from pearlpoint.pipeline.generate import (
    GenerateConfig,
    build_settings,
    check_config,
    check_source,
    generate_async,
    lingo_config,
)
from pearlpoint.pipeline.inputs import PromptRow
from pearlpoint.pipeline.runner import SHARD_KEY, BatchReport, ProgressSink, answer_row

#: ``factory(settings, endpoint) -> async responder`` run inside each actor; picklable (cloudpickle).
ResponderFactory = Callable[[Any, str | None], Any]


def lingo_factory(lingo_cfg: Any) -> ResponderFactory:
    """The default actor responder: real Lingo-BP with models built from the driver's settings."""

    def make(settings: Any, endpoint: str | None) -> Any:
        from pearlpoint.pipeline.generate import build_models, lingo_responder  # noqa: PLC0415

        models = build_models(settings, base_url=endpoint)
        return lingo_responder(models, lingo_cfg, settings)

    return make


def _actor_class(ray: Any) -> Any:
    @ray.remote
    class RowWorker:
        """Answers rows; holds its models (and their HTTP clients, caches) for its whole life."""

        def __init__(self, index: int, settings: Any, endpoint: str | None, factory: ResponderFactory) -> None:
            self.index = index
            self.shard = f"records-w{index:02d}.jsonl"
            if endpoint:
                settings = settings.model_copy(update={"model": "openai", "base_url": endpoint})
            self.responder = factory(settings, endpoint)
            self.node = os.uname().nodename

        async def answer(self, row: PromptRow) -> dict[str, Any]:
            try:
                record = await answer_row(self.responder, row)
            except BudgetExceeded as exc:
                return {"_budget": str(exc)}
            record[SHARD_KEY] = self.shard
            return record

        def info(self) -> dict[str, Any]:
            return {"index": self.index, "node": self.node, "pid": os.getpid()}

    return RowWorker


def init_ray(address: str | None) -> Any:
    try:
        import ray  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("--ray needs Ray: pip install 'pearlpoint[ray]'") from exc
    if not ray.is_initialized():
        kw: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False, "log_to_driver": True,
                              "configure_logging": False}
        address = address or os.environ.get("RAY_ADDRESS")
        try:
            ray.init(address=address, **kw) if address else ray.init(**kw)
        except Exception as exc:  # noqa: BLE001 - a bad address is a user problem
            raise ConfigError(f"cannot connect to Ray at {address or 'a new local instance'}: {exc}") from exc
    return ray


class RayDispatcher:
    """A responder for the batch loop that sends each row to the least busy actor."""

    def __init__(self, actors: list[Any], *, budget_calls: int | None = None) -> None:
        self.actors = actors
        self.load = [0] * len(actors)
        self.budget_calls = budget_calls
        self.calls_seen = 0

    async def __call__(self, row: PromptRow) -> dict[str, Any]:
        if self.budget_calls is not None and self.calls_seen >= self.budget_calls:
            raise BudgetExceeded(f"call budget spent: {self.calls_seen} of {self.budget_calls} calls used")
        i = min(range(len(self.actors)), key=self.load.__getitem__)
        self.load[i] += 1
        try:
            record = await self.actors[i].answer.remote(row)
        finally:
            self.load[i] -= 1
        if "_budget" in record:
            raise BudgetExceeded(record["_budget"])
        usage = record.get("usage") or {}
        self.calls_seen += int(usage.get("calls", 0) or 0)
        return record


def generate_on_ray(cfg: GenerateConfig, *, workers: int | None = None, progress: ProgressSink | None = None,
                    factory: ResponderFactory | None = None, per_worker_concurrency: int | None = None,
                    shutdown: bool = False) -> tuple[BatchReport, dict[str, Any]]:
    """Run the batch with Ray actors; same run directory layout, resume and run.json as a local run."""
    check_config(cfg)
    check_source(cfg.input)
    settings = build_settings(cfg)
    endpoints = list(cfg.endpoints) or ([settings.base_url] if settings.base_url else [None])
    n_workers = workers or (len(endpoints) if cfg.endpoints else 2)
    ray = init_ray(cfg.ray_address)
    remote_only = all(e is not None for e in endpoints) or settings.model == "openai"
    worker_cls = _actor_class(ray).options(
        max_concurrency=max(1, per_worker_concurrency or cfg.concurrency),
        num_cpus=0 if remote_only else 1)
    factory = factory or lingo_factory(lingo_config(cfg))
    actors = [worker_cls.remote(i, settings, endpoints[i % len(endpoints)], factory) for i in range(n_workers)]
    try:
        ray.get([a.info.remote() for a in actors])  # fail fast if an actor cannot start
        dispatcher = RayDispatcher(actors, budget_calls=cfg.budget_calls)
        total_in_flight = n_workers * max(1, per_worker_concurrency or cfg.concurrency)
        local = GenerateConfig(**{**cfg.__dict__, "concurrency": total_in_flight})
        from pearlpoint.llm import run_sync  # noqa: PLC0415

        report, run_json = run_sync(generate_async(local, responder=dispatcher, progress=progress,
                                                   models_info={"ray_workers": str(n_workers),
                                                                "endpoints": ", ".join(e or "local" for e in endpoints)}))
    finally:
        for a in actors:
            ray.kill(a)
        if shutdown:
            ray.shutdown()
    return report, run_json
