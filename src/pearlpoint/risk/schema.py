"""The typed result of a risk assessment: what is risky, how risky, and who is probably asking."""

from __future__ import annotations

from enum import Enum

from pydantic import BaseModel, Field, field_validator, model_validator


class RiskLevel(str, Enum):
    R0 = "R0"  # no risk
    R1 = "R1"  # ethical or regulatory risk
    R2 = "R2"  # adversarial: jailbreak, obfuscation, role-play attack


class Intent(str, Enum):
    safe_inquiry = "safe_inquiry"
    risk_inquiry = "risk_inquiry"
    harmful_opinion = "harmful_opinion"
    malicious_instruction = "malicious_instruction"


class InteractionForm(str, Enum):
    declarative = "declarative"
    inquiry = "inquiry"
    directive = "directive"


USER_TYPES = ("benign", "vulnerable", "malicious")


class UserTypePosterior(BaseModel):
    """Posterior over the follower's private type. Always normalised to sum to one."""

    benign: float = Field(1.0, ge=0.0)
    vulnerable: float = Field(0.0, ge=0.0)
    malicious: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _normalise(self) -> UserTypePosterior:
        total = self.benign + self.vulnerable + self.malicious
        if total <= 0:
            self.benign, self.vulnerable, self.malicious = 1.0, 0.0, 0.0
        elif abs(total - 1.0) > 1e-9:
            self.benign /= total
            self.vulnerable /= total
            self.malicious /= total
        return self

    def as_dict(self) -> dict[str, float]:
        return {"benign": self.benign, "vulnerable": self.vulnerable, "malicious": self.malicious}


class RiskSignal(BaseModel):
    """One reason behind the call, e.g. ``obfuscation: base64 block`` or ``distress: 'no way out'``."""

    name: str
    detail: str = ""
    weight: float = 0.0


class RiskAssessment(BaseModel):
    category: str = Field("none", description="policy category id; 'none' when nothing is risky")
    category_probs: dict[str, float] = Field(default_factory=dict)
    level: RiskLevel = RiskLevel.R0
    intent: Intent = Intent.safe_inquiry
    interaction_form: InteractionForm = InteractionForm.inquiry
    severity: int = Field(0, ge=0, le=4, description="0 none, 1 low, 2 moderate, 3 high, 4 critical")
    harmful_probability: float = Field(0.0, ge=0.0, le=1.0)
    user_types: UserTypePosterior = Field(default_factory=UserTypePosterior)
    signals: list[RiskSignal] = Field(default_factory=list)
    language: str = "en"
    assessor: str = "unknown"
    confidence: float = Field(1.0, ge=0.0, le=1.0, description="how sure the assessor is; drives the cascade")
    adversarial_probability: float = Field(0.0, ge=0.0, le=1.0,
                                           description="probability the text is wrapped in an attack form")
    distress_probability: float = Field(0.0, ge=0.0, le=1.0,
                                        description="probability the writer is vulnerable or in distress")

    @field_validator("harmful_probability", "confidence", "adversarial_probability", "distress_probability",
                     mode="before")
    @classmethod
    def _clip(cls, v: float) -> float:
        return min(1.0, max(0.0, float(v)))

    @property
    def is_benign(self) -> bool:
        return self.level == RiskLevel.R0 and self.category == "none"
