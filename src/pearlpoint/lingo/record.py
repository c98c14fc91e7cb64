"""The trace of one query: every iterate of Lingo-BP and the one chosen. JSON-serialisable.

One ``Record`` per query is what the pipeline writes (JSON Lines), the exporter turns into SFT/ORPO
pairs, the evaluator scores and the proxy serves, so every number can be traced back to text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from pearlpoint.chain.schema import SafetyChain
from pearlpoint.risk.schema import RiskAssessment


def constructive_score(satisfaction: float, safety: float, beta: float = 2.0) -> float:
    """``satisfaction - beta * risk`` with ``risk = 1 - safety``; in [-1 - beta, 1]."""
    return satisfaction - beta * (1.0 - safety)


def normalised_constructive(satisfaction: float, safety: float, beta: float = 2.0) -> float:
    """The constructive score mapped linearly from [-1 - beta, 1] onto [-1, 1]."""
    raw = constructive_score(satisfaction, safety, beta)
    return 2.0 * (raw + 1.0 + beta) / (2.0 + beta) - 1.0


class Iterate(BaseModel):
    """One point of the optimisation: a chain, what it produced, and how the judges scored it."""

    step: int
    mode: str = Field("seed", description="'seed' for step 0, else the mode actually run")
    scheduled_mode: str | None = None
    chain: SafetyChain
    reasoning: str = ""
    answer: str = ""
    satisfaction: float | None = Field(None, ge=-1.0, le=1.0)
    safety: float | None = Field(None, ge=0.0, le=1.0)
    judges: dict[str, Any] | None = Field(None, description="raw judge outputs incl. suggestions")
    backward: dict[str, Any] | None = Field(None, description="diagnosis, applied and dropped edits")
    usage: dict[str, int] = Field(default_factory=dict)
    failed: bool = False
    skipped: bool = Field(False, description="backward proposed no change; nothing regenerated")
    error: str | None = None

    @property
    def judged(self) -> bool:
        return not self.failed and self.satisfaction is not None and self.safety is not None

    @property
    def perfect(self) -> bool:
        return self.judged and self.satisfaction == 1.0 and self.safety == 1.0

    def constructive(self, beta: float = 2.0) -> float | None:
        if not self.judged:
            return None
        return constructive_score(self.satisfaction, self.safety, beta)  # type: ignore[arg-type]


class Record(BaseModel):
    id: str
    query: str = Field(description="the latest user message")
    messages: list[dict[str, str]] | None = Field(None, description="the whole conversation when multi-turn")
    lang: str = "en"
    assessment: RiskAssessment | None = None
    solution: dict[str, Any] | None = Field(None, description="the game solution (GameSolution as JSON)")
    category: str = "none"
    guideline: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    iterates: list[Iterate] = Field(default_factory=list)
    chosen_index: int | None = None
    usage: dict[str, int] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    elapsed_s: float = 0.0
    generator: str = ""
    judge_model: str = ""
    guard: dict[str, Any] | None = Field(None, description="what the guard stage did to the chosen answer: "
                                         "mode, action (passed, regenerated, composed, ...), reasons")
    final_answer: str | None = Field(None, description="the answer after the guard, when it differs")

    @field_validator("solution", mode="before")
    @classmethod
    def _solution(cls, v: Any) -> Any:
        if v is None or isinstance(v, dict):
            return v
        dump = getattr(v, "model_dump", None)
        return dump(mode="json") if dump else dict(v)

    @property
    def chosen(self) -> Iterate | None:
        if self.chosen_index is None or not (0 <= self.chosen_index < len(self.iterates)):
            return None
        return self.iterates[self.chosen_index]

    @property
    def initial(self) -> Iterate | None:
        return self.iterates[0] if self.iterates else None

    @property
    def answer(self) -> str:
        """The reply to send: the guard's answer when it replaced the chosen one, else the chosen
        iterate's answer ("" when nothing could be generated)."""
        if self.final_answer is not None:
            return self.final_answer
        chosen = self.chosen
        return chosen.answer if chosen is not None else ""

    @property
    def pearl_point(self) -> str | None:
        return (self.solution or {}).get("pearl_point")

    @property
    def calls(self) -> int:
        """LLM calls this query made, cache hits included (the logical cost)."""
        return int(self.usage.get("calls", 0)) + int(self.usage.get("cache_hits", 0))
