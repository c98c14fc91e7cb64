"""Embedded classifiers shared by every higher layer (risk, guard, lingo, eval, serve).

They sit low in the stack on purpose: the guard's answer checker, Lingo-BP's safety second opinion
and ``pearl eval`` all need the same response classifier, and none of them may import another's area.

    from pearlpoint.classifiers import EmbeddedResponseJudge
    verdict = EmbeddedResponseJudge().classify_one(prompt, reply)   # refusal class, action, harm

Names load lazily so that importing the package costs nothing until a classifier runs.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "EmbeddedResponseJudge": "pearlpoint.classifiers.response",
    "ResponseVerdict": "pearlpoint.classifiers.response",
    "REFUSAL_CLASSES": "pearlpoint.classifiers.response",
    "phrase_baseline": "pearlpoint.classifiers.features",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pearlpoint.classifiers' has no attribute {name!r}")


__all__ = list(_LAZY)
