"""The game's data: user types, leader strategies, follower reactions and payoffs, as typed objects.

The numbers live in ``data/payoffs.yaml`` (shipped) and a user's file merged over it; this module
only describes their shape and turns them into dense arrays the solvers index by integer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class LeaderStrategy(BaseModel):
    """One way the model can reply, with the phrases that seed a safety chain and a generator steer."""

    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    label_zh: str = ""
    description: str = ""
    rank: int = Field(0, description="0 = most forthcoming .. higher = more restrictive")
    cost: float = Field(0.5, ge=0.0, le=1.0)
    exposure: float = Field(0.0, ge=0.0, le=1.0)
    safety_phrases: list[str] = Field(default_factory=list)
    usefulness_phrases: list[str] = Field(default_factory=list)
    safety_phrases_zh: list[str] = Field(default_factory=list)
    usefulness_phrases_zh: list[str] = Field(default_factory=list)
    steering: dict[str, str] = Field(default_factory=dict)

    def phrases(self, lang: str = "en") -> tuple[list[str], list[str]]:
        """(safety, usefulness) phrases in ``lang``; Chinese falls back to English where missing."""
        if str(lang).lower().startswith("zh"):
            return (list(self.safety_phrases_zh or self.safety_phrases),
                    list(self.usefulness_phrases_zh or self.usefulness_phrases))
        return list(self.safety_phrases), list(self.usefulness_phrases)

    def steer(self, lang: str = "en") -> str:
        """The generator instruction in ``lang``, falling back to English."""
        return self.steering.get(lang) or self.steering.get("en", "")

    def name(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


class UserType(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    label_zh: str = ""
    description: str = ""

    def name(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


class Reaction(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    label_zh: str = ""
    retention: float = Field(0.0, ge=0.0, le=1.0)
    uses_reply: bool = False
    next_state: str | None = None

    def name(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


class NextState(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    label: str
    label_zh: str = ""
    discount: float = Field(0.8, ge=0.0, le=1.0)
    severity_delta: int = 0
    type_likelihood: dict[str, float]
    risk: dict[str, float]

    def name(self, lang: str = "en") -> str:
        return self.label_zh if lang == "zh" and self.label_zh else self.label


class Distress(BaseModel):
    """How one type's preferences shift with the category's severity.

    The vulnerable type lumps the misinformed (false beliefs: low-severity categories) with the
    distressed (self-harm, crisis: critical categories). ``share[severity]`` is the weight of the
    distressed profile; the type's utility for a strategy is ``(1 - share) * base + share * distressed``
    for the strategies listed in ``user_utility`` (the others are the same for both kinds of person).
    """

    model_config = ConfigDict(frozen=True)

    type: str
    share: dict[int, float]
    user_utility: dict[str, dict[str, float]]


class Parameters(BaseModel):
    model_config = ConfigDict(frozen=True)

    alpha: float = 1.0
    beta: float = 2.0
    gamma: float = 0.1
    severity_scale: dict[int, float]
    safety_budget: dict[int, float]
    default_prior: dict[str, float]


class Payoffs(BaseModel):
    """A complete, validated game specification (see ``load_payoffs``)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    source: str = "<default>"
    parameters: Parameters
    user_types: tuple[UserType, ...]
    strategies: tuple[LeaderStrategy, ...]
    reactions: tuple[Reaction, ...]
    next_states: tuple[NextState, ...] = ()
    distress: Distress | None = None
    reaction_harm: dict[str, dict[str, float]]
    user_utility: dict[str, dict[str, dict[str, float]]]
    _tensors: PayoffTensors | None = PrivateAttr(default=None)

    @property
    def type_ids(self) -> list[str]:
        return [t.id for t in self.user_types]

    @property
    def strategy_ids(self) -> list[str]:
        return [s.id for s in self.strategies]

    @property
    def reaction_ids(self) -> list[str]:
        return [r.id for r in self.reactions]

    def strategy(self, sid: str) -> LeaderStrategy:
        for s in self.strategies:
            if s.id == sid:
                return s
        raise KeyError(sid)

    def user_type(self, tid: str) -> UserType:
        for t in self.user_types:
            if t.id == tid:
                return t
        raise KeyError(tid)

    def reaction(self, rid: str) -> Reaction:
        for r in self.reactions:
            if r.id == rid:
                return r
        raise KeyError(rid)

    def next_state(self, nid: str) -> NextState:
        for n in self.next_states:
            if n.id == nid:
                return n
        raise KeyError(nid)

    def severity_scale(self, severity: int) -> float:
        return _lookup_level(self.parameters.severity_scale, severity)

    def distress_share(self, severity: int) -> float:
        """Weight of the distressed profile at this severity (0 when the spec has no distress section)."""
        return 0.0 if self.distress is None else _lookup_level(self.distress.share, severity)

    def budget(self, severity: int) -> float:
        return _lookup_level(self.parameters.safety_budget, severity)

    def tensors(self) -> PayoffTensors:
        """Dense arrays indexed [type, strategy, reaction]; computed once per spec and cached."""
        if self._tensors is None:
            self._tensors = _build_tensors(self)
        return self._tensors


def _lookup_level(table: dict[int, float], severity: int) -> float:
    if severity in table:
        return table[severity]
    levels = sorted(table)
    clipped = min(max(severity, levels[0]), levels[-1])
    return table[clipped]


@dataclass(frozen=True)
class PayoffTensors:
    """Severity- and beta-free building blocks of the leader's and follower's utilities."""

    follower: np.ndarray   # [T, S, R] user utility
    retention: np.ndarray  # [T, S, R] retention of the reaction
    harm: np.ndarray       # [T, S, R] base harm (before severity scaling)
    cost: np.ndarray       # [S]
    rank: np.ndarray       # [S]
    next_state: np.ndarray  # [R] index into next_states, -1 when terminal
    distress_delta: np.ndarray  # [T, S, R] distressed minus base user utility (zero outside the distress type)

    def follower_at(self, share: float) -> np.ndarray:
        """User utility for a category whose distress share is ``share``."""
        return self.follower if share == 0.0 else self.follower + share * self.distress_delta


def _build_tensors(p: Payoffs) -> PayoffTensors:
    T, S, R = len(p.user_types), len(p.strategies), len(p.reactions)
    follower = np.zeros((T, S, R))
    retention = np.zeros((T, S, R))
    harm = np.zeros((T, S, R))
    for ti, t in enumerate(p.user_types):
        for si, s in enumerate(p.strategies):
            for ri, r in enumerate(p.reactions):
                follower[ti, si, ri] = p.user_utility[t.id][s.id][r.id]
                retention[ti, si, ri] = r.retention
                base = p.reaction_harm[t.id][r.id]
                harm[ti, si, ri] = base * (s.exposure if r.uses_reply else 1.0)
    cost = np.array([s.cost for s in p.strategies])
    rank = np.array([s.rank for s in p.strategies])
    state_index = {n.id: i for i, n in enumerate(p.next_states)}
    nxt = np.array([state_index.get(r.next_state, -1) if r.next_state else -1 for r in p.reactions])
    delta = np.zeros((T, S, R))
    if p.distress is not None:
        ti = p.type_ids.index(p.distress.type)
        for si, s in enumerate(p.strategies):
            row = p.distress.user_utility.get(s.id)
            if row is not None:
                delta[ti, si] = [row[r.id] - follower[ti, si, ri] for ri, r in enumerate(p.reactions)]
    return PayoffTensors(follower, retention, harm, cost, rank, nxt, delta)
