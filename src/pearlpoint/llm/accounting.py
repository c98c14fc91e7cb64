"""Call and token accounting, per run and per (async) context, and the budget that stops a run."""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

from pearlpoint.errors import BudgetExceeded


@dataclass
class UsageCounter:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    repairs: int = 0
    errors: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def snapshot(self) -> dict[str, int]:
        d = asdict(self)
        d["total_tokens"] = self.total_tokens
        return d


@dataclass
class Budget:
    """Stops a run cleanly: the call that would exceed it raises BudgetExceeded before it is sent."""

    max_calls: int | None = None
    max_tokens: int | None = None

    def check(self, usage: UsageCounter) -> None:
        if self.max_calls is not None and usage.calls >= self.max_calls:
            raise BudgetExceeded(
                f"call budget spent: {usage.calls} of {self.max_calls} calls used "
                "(raise --budget-calls or PEARL_BUDGET_CALLS to go on)")
        if self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
            raise BudgetExceeded(
                f"token budget spent: {usage.total_tokens} of {self.max_tokens} tokens used "
                "(raise --budget-tokens or PEARL_BUDGET_TOKENS to go on)")


_scopes: contextvars.ContextVar[tuple[UsageCounter, ...]] = contextvars.ContextVar("pearl_usage_scopes",
                                                                                   default=())


@contextlib.contextmanager
def track_usage() -> Iterator[UsageCounter]:
    """Count every model call made inside this context (including tasks it spawns)."""
    counter = UsageCounter()
    token = _scopes.set(_scopes.get() + (counter,))
    try:
        yield counter
    finally:
        _scopes.reset(token)


@dataclass
class Accounting:
    """Run-wide counters shared by all models of a run; thread-safe."""

    usage: UsageCounter = field(default_factory=UsageCounter)
    budget: Budget = field(default_factory=Budget)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def before_call(self) -> None:
        with self._lock:
            self.budget.check(self.usage)

    def record(self, *, calls: int = 0, cache_hits: int = 0, prompt_tokens: int = 0,
               completion_tokens: int = 0, retries: int = 0, repairs: int = 0, errors: int = 0) -> None:
        with self._lock:
            for c in (self.usage, *_scopes.get()):
                c.calls += calls
                c.cache_hits += cache_hits
                c.prompt_tokens += prompt_tokens
                c.completion_tokens += completion_tokens
                c.retries += retries
                c.repairs += repairs
                c.errors += errors

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return self.usage.snapshot()
