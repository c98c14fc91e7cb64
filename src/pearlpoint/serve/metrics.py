"""Prometheus metrics written by hand (text exposition format 0.0.4), so the proxy needs no extra
dependency. Thread-safe: counters are touched from the event loop and from worker threads."""

from __future__ import annotations

import math
import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

Labels = tuple[tuple[str, str], ...]


def _labels(**kw: str) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in kw.items()))


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _fmt_num(x: float) -> str:
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if float(x).is_integer():
        return str(int(x))
    return repr(float(x))


class Counter:
    def __init__(self, name: str, help_: str) -> None:
        self.name, self.help = name, help_
        self._values: dict[Labels, float] = defaultdict(float)
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._values[_labels(**labels)] += amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(_labels(**labels), 0.0)

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        with self._lock:
            for labels, v in sorted(self._values.items()):
                out.append(f"{self.name}{_fmt_labels(labels)} {_fmt_num(v)}")
        return out


class Gauge(Counter):
    def dec(self, amount: float = 1.0, **labels: str) -> None:
        self.inc(-amount, **labels)

    def render(self) -> list[str]:
        lines = super().render()
        lines[1] = f"# TYPE {self.name} gauge"
        if len(lines) == 2:
            lines.append(f"{self.name} 0")
        return lines


class Histogram:
    def __init__(self, name: str, help_: str, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.name, self.help, self.buckets = name, help_, buckets
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = defaultdict(float)
        self._lock = threading.Lock()

    def observe(self, value: float, **labels: str) -> None:
        key = _labels(**labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, edge in enumerate(self.buckets):
                if value <= edge:
                    counts[i] += 1
            counts[-1] += 1
            self._sums[key] += value

    def count(self, **labels: str) -> int:
        with self._lock:
            c = self._counts.get(_labels(**labels))
            return c[-1] if c else 0

    def render(self) -> list[str]:
        out = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        with self._lock:
            for labels, counts in sorted(self._counts.items()):
                for edge, c in zip(self.buckets, counts, strict=False):
                    out.append(f"{self.name}_bucket{_fmt_labels(labels, (('le', _fmt_num(edge)),))} {c}")
                out.append(f"{self.name}_bucket{_fmt_labels(labels, (('le', '+Inf'),))} {counts[-1]}")
                out.append(f"{self.name}_sum{_fmt_labels(labels)} {_fmt_num(self._sums[labels])}")
                out.append(f"{self.name}_count{_fmt_labels(labels)} {counts[-1]}")
        return out


class ServeMetrics:
    """Every metric the proxy exports. One instance per app; survives config reloads."""

    def __init__(self) -> None:
        self.requests = Counter("pearl_requests_total", "HTTP requests by route and status code.")
        self.latency = Histogram("pearl_request_duration_seconds", "Request latency by route (seconds).")
        self.stage = Histogram("pearl_stage_duration_seconds",
                               "Time in each CSA stage: assess, solve, steer, upstream, refine (seconds).")
        self.decisions = Counter("pearl_decisions_total", "CSA decisions by risk level and chosen strategy.")
        self.upstream_errors = Counter("pearl_upstream_errors_total", "Upstream failures by kind.")
        self.leaks = Counter("pearl_leaks_blocked_total", "Answers cut because they repeated steering text or a secret.")
        self.rate_limited = Counter("pearl_rate_limited_total", "Requests refused by the per-key rate limit.")
        self.auth_failures = Counter("pearl_auth_failures_total", "Requests refused for a missing or wrong key.")
        self.inflight = Gauge("pearl_inflight_requests", "Chat requests being served right now.")
        self.reloads = Counter("pearl_config_reloads_total", "Config reloads by result.")
        self.audit_dropped = Counter("pearl_audit_dropped_total",
                                     "Audit entries dropped because the audit queue was full (disk too slow).")
        self.guard_actions = Counter("pearl_guard_actions_total",
                                     "Answers by guard action (trusted, passed, regenerated, composed, ...).")
        self.guard_failures = Counter("pearl_guard_failures_total", "Answer-checker failures by reason.")

    def render(self) -> str:
        parts: list[str] = []
        for m in (self.requests, self.latency, self.stage, self.decisions, self.upstream_errors, self.leaks,
                  self.rate_limited, self.auth_failures, self.inflight, self.reloads, self.audit_dropped,
                  self.guard_actions, self.guard_failures):
            parts.extend(m.render())
        return "\n".join(parts) + "\n"
