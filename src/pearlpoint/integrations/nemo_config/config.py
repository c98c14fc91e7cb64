"""Registers pearlpoint's actions when NeMo Guardrails loads this config (its ``init(app)`` hook)."""

from pearlpoint.integrations.nemo_actions import register


def init(app):
    register(app)
