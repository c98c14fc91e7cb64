"""Risk assessment: what is risky (category), how risky (level, severity, harm probability), why
(intent, interaction form, signals) and who is probably asking (user-type posterior).

    from pearlpoint.risk import assess, get_assessor
    assess("how do I kill a python process").level          # R0
    get_assessor("cascade").assess(messages)                 # embedded first, LLM where unsure
"""

from __future__ import annotations

import threading
from typing import Any

from pearlpoint.risk.schema import (
    Intent,
    InteractionForm,
    RiskAssessment,
    RiskLevel,
    RiskSignal,
    UserTypePosterior,
)

KINDS = ("embedded", "llm", "cascade")
_LOCK = threading.Lock()
_EMBEDDED: dict[str, Any] = {}


def get_embedded(weights_dir: str | None = None, policy_file: str | None = None,
                 operating_point: str | None = None) -> Any:
    """One EmbeddedAssessor per (weights, policy, operating point) per process: loading the encoder takes
    seconds. ``operating_point`` balanced (default) | strict; ``PEARL_RISK_OPERATING_POINT`` sets the default.
    ``PEARL_RISK_FAST_PATH=off`` reads every prompt with both encoders (no USE-only fast path)."""
    import os

    from pearlpoint.policy import get_policy
    from pearlpoint.risk.embedded import EmbeddedAssessor

    point = operating_point or os.environ.get("PEARL_RISK_OPERATING_POINT", "").strip() or "balanced"
    fast = os.environ.get("PEARL_RISK_FAST_PATH", "on").strip().lower() not in ("off", "0", "false", "no")
    key = f"{weights_dir}|{policy_file}|{point}|{fast}"
    with _LOCK:
        if key not in _EMBEDDED:
            _EMBEDDED[key] = EmbeddedAssessor(weights_dir, policy=get_policy(policy_file), operating_point=point,
                                              fast_path=fast)
        return _EMBEDDED[key]


def get_assessor(kind: str | None = None, settings: Any = None, *, model: Any = None,
                 weights_dir: str | None = None, operating_point: str | None = None) -> Any:
    """An assessor with ``assess(text_or_messages)`` and ``async aassess(...)``.

    ``kind`` defaults to ``settings.assessor`` ("embedded"). ``model`` (a ManagedModel) overrides the
    LLM built from settings (judge role) for the llm and cascade kinds.
    """
    from pearlpoint.errors import ConfigError

    if kind is None:
        kind = getattr(settings, "assessor", None) or "embedded"
    if kind not in KINDS:
        raise ConfigError(f"unknown assessor '{kind}': choose one of {', '.join(KINDS)}")
    policy_file = getattr(settings, "policy_file", None)
    policy_file = str(policy_file) if policy_file else None
    if kind == "embedded":
        return get_embedded(weights_dir, policy_file, operating_point)
    from pearlpoint.policy import get_policy
    from pearlpoint.risk.llm_assessor import LLMAssessor

    llm = LLMAssessor(model=model, policy=get_policy(policy_file), settings=settings)
    if kind == "llm":
        return llm
    from pearlpoint.risk.cascade import CascadeAssessor

    return CascadeAssessor(get_embedded(weights_dir, policy_file, operating_point), llm)


def assess(text_or_messages: Any, kind: str = "embedded", settings: Any = None) -> RiskAssessment:
    """Convenience: assess one text (or chat) with the named assessor."""
    return get_assessor(kind, settings).assess(text_or_messages)


__all__ = ["KINDS", "Intent", "InteractionForm", "RiskAssessment", "RiskLevel", "RiskSignal", "UserTypePosterior",
           "assess", "get_assessor", "get_embedded"]
