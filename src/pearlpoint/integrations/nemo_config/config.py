"""NeMo Guardrails calls ``init(app)`` when it loads this config, before it builds its models: the
Pearl actions are registered, and ``engine: pearlpoint`` becomes available (rails on pearlpoint's own
model layer, e.g. the embedded model offline)."""

from pearlpoint.integrations.nemo_actions import register
from pearlpoint.integrations.nemo_llm import register_provider


def init(app):
    register_provider()
    register(app)
