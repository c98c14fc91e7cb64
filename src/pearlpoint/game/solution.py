"""What a solve returns: typed, JSON-serialisable, and readable by the chain and the serve layer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from pearlpoint.game.explain import Explanation
from pearlpoint.game.spec import LeaderStrategy


class TypeReaction(BaseModel):
    """How one user type is predicted to react to one strategy, and what that is worth."""

    type: str
    probability: float
    reaction: str
    user_utility: float
    leader_utility: float
    risk: float
    next_state: str | None = None


class StrategyOutcome(BaseModel):
    """One leader strategy evaluated against every user type's best response."""

    id: str
    label: str
    rank: int
    expected_utility: float
    expected_risk: float
    expected_retention: float
    cost: float
    feasible: bool
    reactions: dict[str, TypeReaction] = Field(default_factory=dict, description="by user type")


class NextTurn(BaseModel):
    """Two-stage anticipation: where a type's reaction to the chosen reply leads, and the planned answer."""

    type: str
    reaction: str
    state: str
    posterior: dict[str, float]
    severity: int
    planned_strategy: str
    planned_reaction: str
    leader_value: float
    risk: float


class MixedCommitment(BaseModel):
    """A policy over strategies (DOBSS MILP): the model randomises; users react to the policy."""

    policy: dict[str, float]
    expected_utility: float
    expected_risk: float
    reactions: dict[str, str]
    feasible: bool
    pure_utility: float = Field(description="the best pure strategy's utility, for comparison")
    solver_status: str = ""


class GameSolution(BaseModel):
    """The Pearl Point of one query and everything needed to justify it."""

    pearl_point: str
    chosen: LeaderStrategy
    strategies: list[StrategyOutcome]
    infeasible: bool
    explanation: Explanation
    beta: float
    alpha: float
    gamma: float
    posterior: dict[str, float]
    category: str
    severity: int
    budget: float
    two_stage: bool = False
    next_turn: list[NextTurn] | None = None
    mixed: MixedCommitment | None = None
    payoffs_source: str = ""

    def outcome(self, strategy_id: str) -> StrategyOutcome:
        for o in self.strategies:
            if o.id == strategy_id:
                return o
        raise KeyError(strategy_id)

    @property
    def runner_up(self) -> str | None:
        return self.explanation.runner_up

    def summary(self) -> dict[str, object]:
        """The compact JSON form the CLI prints with --json (and the serve layer can log)."""
        return {
            "pearl_point": self.pearl_point,
            "infeasible": self.infeasible,
            "category": self.category,
            "severity": self.severity,
            "budget": self.budget,
            "beta": self.beta,
            "posterior": {t: round(p, 12) for t, p in self.posterior.items()},
            "strategies": [
                {"id": o.id, "expected_utility": round(o.expected_utility, 6),
                 "expected_risk": round(o.expected_risk, 6), "feasible": o.feasible,
                 "reactions": {t: r.reaction for t, r in o.reactions.items()}}
                for o in self.strategies
            ],
            "explanation": {**self.explanation.model_dump(), "text": self.explanation.text("en")},
            "two_stage": self.two_stage,
            "next_turn": [n.model_dump() for n in self.next_turn] if self.next_turn is not None else None,
            "mixed": self.mixed.model_dump() if self.mixed is not None else None,
        }
