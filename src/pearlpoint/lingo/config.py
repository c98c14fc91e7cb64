"""Lingo-BP settings: how many steps, in which modes, how hard risk is penalised, what it may spend."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from pearlpoint.errors import ConfigError

Mode = Literal["user", "developer", "both"]
MODES: tuple[str, ...] = ("user", "developer", "both")


def parse_schedule(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """``"developer,user"`` / ``"both*3"`` / ``["both"] * 3`` -> a list of modes (validated)."""
    if isinstance(text, list | tuple):
        parts = [str(p) for p in text]
    else:
        parts = []
        for chunk in re.split(r"[,\s]+", str(text).strip()):
            if not chunk:
                continue
            m = re.fullmatch(r"([A-Za-z]+)\s*(?:[*x](\d+))?", chunk)
            if not m:
                raise ConfigError(f"schedule: cannot read {chunk!r}; write e.g. 'developer,user' or 'both*3'")
            parts += [m.group(1)] * int(m.group(2) or 1)
    modes = [p.strip().lower() for p in parts]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ConfigError(f"schedule: unknown mode {bad[0]!r}; modes are {', '.join(MODES)}")
    if not modes:
        raise ConfigError("schedule: empty; give at least one of user, developer, both")
    return modes


class LingoConfig(BaseModel):
    """``steps`` backward rounds after the seeded iterate; the schedule is cycled over the rounds."""

    steps: int = Field(2, ge=0, le=50)
    schedule: list[Mode] = Field(default_factory=lambda: ["developer", "user"])
    beta: float = Field(2.0, ge=0.0, description="risk weight in satisfaction - beta * risk")
    max_calls: int | None = Field(None, ge=2, description="per-query cap on real (uncached) LLM calls")
    max_tokens: int = Field(512, ge=16, description="forward pass (reasoning + answer)")
    judge_max_tokens: int = Field(512, ge=16)
    backward_max_tokens: int = Field(384, ge=16)
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="forward pass; judges and backward use 0")
    judge_mode: Literal["combined", "separate"] = "combined"
    forward_format: Literal["auto", "json", "text"] = Field(
        "auto", description="json: the model writes reasoning + answer; text: only the answer, reasoning = "
                            "the chain verbalised; auto: text on the embedded model, json elsewhere")
    safety_check: Literal["auto", "off", "embedded"] = Field(
        "auto", description="cross-check the safety verdict with the embedded response classifier; "
                            "auto = only when the judge is the embedded model")
    guard: bool = Field(True, description="feed the answer checker's failed reasons back as judge feedback, and "
                                          "guard the chosen answer (check / regenerate / compose) at the end")
    guard_file: Path | None = Field(None, description="guard policy YAML merged over the packaged default")
    max_attempts: int = Field(2, ge=1, le=5, description="structured-output tries per call (re-asks count)")
    adaptive: bool = Field(True, description="skip a mode whose objective is already perfect")
    early_stop: bool = True
    max_prompt_chars: int = Field(12000, ge=500, description="query/answer clip inside judge and backward prompts")
    policy_file: Path | None = None
    payoffs_file: Path | None = None

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, v: object) -> list[str]:
        return parse_schedule(v)  # type: ignore[arg-type]

    def mode_for(self, round_index: int) -> str:
        return self.schedule[round_index % len(self.schedule)]
