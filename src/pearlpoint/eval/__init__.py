"""Evaluation: benchmark loaders, metrics with bootstrap CIs, response judges, runs and reports.

    from pearlpoint.eval import load_suite, EmbeddedResponseJudge, all_metrics
    items = load_suite("constructive").items                 # the packaged 123-item suite
    verdict = EmbeddedResponseJudge().classify_one(prompt, reply)   # refusal, action, harmful_probability

Names are imported lazily so that ``import pearlpoint.eval`` stays cheap (no torch until a judge runs).
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "BenchItem": "pearlpoint.eval.loaders", "load_suite": "pearlpoint.eval.loaders", "SUITES": "pearlpoint.eval.loaders",
    "all_metrics": "pearlpoint.eval.metrics", "BETAS": "pearlpoint.eval.metrics",
    "EmbeddedResponseJudge": "pearlpoint.classifiers.response", "ResponseVerdict": "pearlpoint.classifiers.response",
    "LLMResponseJudge": "pearlpoint.eval.judge_llm", "EvalConfig": "pearlpoint.eval.runner",
    "EvalRunner": "pearlpoint.eval.runner", "rejudge": "pearlpoint.eval.runner",
    "compare_runs": "pearlpoint.eval.report", "phrase_baseline": "pearlpoint.classifiers.features",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pearlpoint.eval' has no attribute {name!r}")


__all__ = list(_LAZY)
