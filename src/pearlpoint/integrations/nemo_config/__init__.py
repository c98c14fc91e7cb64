"""The example NeMo Guardrails config (a package only so that its config.py ships in the wheel)."""
