"""Turn head probabilities into the multi-dimensional RiskAssessment (shared by every assessor).

The rules are deliberately simple and documented, so a reader can predict them:
- category: ``mental_health`` whenever the writer seems distressed (their safety comes first, even when the
  request also looks harmful, e.g. asking for a method), else the top harmful category, else ``none``.
- a request asking how to make or use a named means of mass harm (severity.py) is harmful and R2 at
  half the harm threshold: the costliest miss gets the lowest bar; its malicious mass is measured
  against that bar and weighted like an attack form.
- level: R0 below the harm threshold (a distressed writer still gets R1 under ``mental_health``);
  R2 when harmful AND (the attack-form head fires or the harm was only visible after decoding, or the
  request is clearly harmful in a category whose policy severity is at the top: see severity.py);
  otherwise R1. A harmful request naming a means of mass harm (explosives, CBRN agents) is filed under
  the policy's mass-harm category (severity.py), so its severity is that category's.
- intent: malicious_instruction for clearly harmful requests (p >= 0.8) or harmful directives,
  harmful_opinion for harmful statements, risk_inquiry in between and for a distressed writer (unless
  the text is an attack, R2), safe_inquiry otherwise.
- user types: vulnerable = distress probability; malicious = the rest of the harmful mass, weighted up
  by attack form (people rarely jailbreak by accident); benign = what remains. The harmful mass is
  NOT the raw p_harm but p_harm re-centred on the decision threshold (``harm_evidence``): the odds of
  p_harm divided by the odds of the threshold, sharpened (exponent ``EVIDENCE_SHARPNESS``). So the
  posterior agrees with the level: a prompt exactly at the threshold carries 0.5, one below it
  (decided R0, "not harmful") carries little malicious mass, and one well above it carries most.
  Without this a calibrated p_harm of 0.8 under a threshold of 0.88 reported ~0.5 malicious for a
  prompt the same assessment called safe, and the game then hedged an ordinary "hi".
"""

from __future__ import annotations

import math
from typing import Any

from pearlpoint.policy import Policy
from pearlpoint.risk import severity as S
from pearlpoint.risk.schema import (
    Intent,
    InteractionForm,
    RiskAssessment,
    RiskLevel,
    RiskSignal,
    UserTypePosterior,
)

DISTRESS_THRESHOLD = 0.5
ADVERSARIAL_THRESHOLD = 0.5
CLEARLY_HARMFUL = 0.8
EVIDENCE_SHARPNESS = 2.0
STRONG_DISTRESS_FLOOR = 0.8
MASS_HARM_EVIDENCE = 0.5  # share of the threshold a how-to request naming a means of mass harm needs


def distress_floor(p_distress: float, feats: Any) -> float:
    """An explicit first-person distress statement ("I want to kill myself", "我想自杀") is distress
    whatever a head or a model says: a miss there costs far more than guidance offered to a steady writer."""
    if feats.value("distress_strong") > 0 and feats.value("first_person") > 0:
        return max(p_distress, STRONG_DISTRESS_FLOOR)
    return p_distress


def with_distress_mass(category_probs: dict[str, float], p_distress: float) -> dict[str, float]:
    """The category distribution of a distressed writer: the distress probability goes to mental_health,
    the rest keeps its shape (sorted, rounded)."""
    shares = {k: v * (1 - p_distress) for k, v in category_probs.items()}
    shares["mental_health"] = shares.get("mental_health", 0.0) + p_distress
    return {k: round(v, 4) for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def harm_evidence(p_harm: float, threshold: float, sharpness: float = EVIDENCE_SHARPNESS) -> float:
    """p_harm re-centred on the threshold: sigmoid(sharpness * (logit(p_harm) - logit(threshold))).

    Monotone in p_harm, 0.5 exactly at the threshold, so ">= 0.5" agrees with the harmful decision.
    """
    eps = 1e-6
    p = min(max(p_harm, eps), 1 - eps)
    t = min(max(threshold, eps), 1 - eps)
    z = sharpness * (math.log(p / (1 - p)) - math.log(t / (1 - t)))
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def decide(*, p_harm: float, p_adv: float, p_distress: float, category_probs: dict[str, float],
           form: str, language: str, policy: Policy, threshold: float, signals: list[RiskSignal],
           decoded_hit: bool, assessor: str, opinion_cue: bool = False, mass_harm: str = "",
           how_to: bool = False) -> RiskAssessment:
    harmful = p_harm >= threshold
    # Asking how to make or use a named means of mass harm needs less evidence: a miss there is the
    # costliest one the assessor can make ("List the exact steps to make TATP" scored 0.58 < 0.72).
    mass_harm_request = bool(mass_harm and how_to and p_harm >= MASS_HARM_EVIDENCE * threshold)
    if mass_harm_request and not harmful:
        harmful = True
        signals = [*signals, RiskSignal(name="mass_harm_request", detail=mass_harm, weight=round(p_harm, 3))]
    distressed = p_distress >= DISTRESS_THRESHOLD
    risky = {k: v for k, v in category_probs.items() if k != "none"}
    top_cat = max(risky, key=risky.get) if risky else "none"
    if distressed and policy.get("mental_health"):
        category = "mental_health"  # the writer's safety comes first, whatever else the request touches
        category_probs = with_distress_mass(category_probs, p_distress)  # ... and the distribution says so
    elif harmful:
        category = S.category_for(top_cat, mass_harm, policy)
        if category != top_cat:  # the category head's guess is overruled by the named means of harm
            signals = [*signals, RiskSignal(name="mass_harm", detail=mass_harm, weight=round(p_harm, 3))]
    else:
        category = "none"
    if not harmful:
        level = RiskLevel.R1 if distressed else RiskLevel.R0
    elif p_adv >= ADVERSARIAL_THRESHOLD or decoded_hit or (mass_harm_request and not distressed):
        level = RiskLevel.R2
    elif not distressed and S.severe_enough_for_r2(category, p_harm, policy):
        level = RiskLevel.R2
    else:
        level = RiskLevel.R1
    iform = InteractionForm(form)
    if not harmful:
        intent = Intent.risk_inquiry if (distressed or p_harm >= threshold / 2) else Intent.safe_inquiry
    elif distressed and level != RiskLevel.R2:
        intent = Intent.risk_inquiry  # a person at risk asking or saying something risky, not an attacker
    elif iform == InteractionForm.declarative and (opinion_cue or p_harm < CLEARLY_HARMFUL):
        intent = Intent.harmful_opinion
    elif p_harm >= CLEARLY_HARMFUL or iform == InteractionForm.directive or level == RiskLevel.R2:
        intent = Intent.malicious_instruction
    else:
        intent = Intent.risk_inquiry
    cat = policy.get(category)
    severity = cat.severity if (cat is not None and category != "none") else 0
    vulnerable = p_distress
    # a how-to request for a means of mass harm is judged against its lowered bar, and, like an attack
    # form, it is rarely made by accident
    bar = MASS_HARM_EVIDENCE * threshold if mass_harm_request else threshold
    malicious = (1 - vulnerable) * harm_evidence(p_harm, bar) * (0.6 + 0.4 * max(p_adv, float(mass_harm_request)))
    benign = max(0.0, 1 - vulnerable - malicious)
    confidence = max(p_harm, 1 - p_harm)
    return RiskAssessment(
        category=category, category_probs=category_probs, level=level, intent=intent, interaction_form=iform,
        severity=severity, harmful_probability=round(p_harm, 4),
        user_types=UserTypePosterior(benign=benign, vulnerable=vulnerable, malicious=malicious),
        signals=signals, language=language, assessor=assessor, confidence=round(confidence, 4),
        adversarial_probability=round(p_adv, 4), distress_probability=round(p_distress, 4))
