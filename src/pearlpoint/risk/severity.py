"""Severity follows the worst plausible outcome of the category, not only how the request is worded.

Two documented rules, applied by :func:`pearlpoint.risk.decision.decide` to a request the harm head
already called harmful (they never turn a safe request risky, so safe look-alikes such as "what is TATP
and why is it dangerous for bomb squads?" are untouched):

1. **Mass-harm category.** When the text names the means of mass harm (explosives and their
   precursors, chemical/biological/radiological agents, weaponising them), the category is the
   policy's mass-harm category (the one whose aliases include ``explosives``; ``hazardous_materials``
   in the default policy), whatever the category head guessed (it filed TATP synthesis as
   ``cybersecurity``). A category the head chose that is already at least that severe is kept
   (e.g. ``violent_terror`` for a bomb attack plan).
2. **High severity, clear harm -> R2.** A clearly harmful request (harmful probability >=
   ``CLEARLY_HARMFUL_FOR_R2``) in a category whose policy severity is >= ``R2_SEVERITY`` gets R2 even
   without an attack form: its worst outcome is as bad as any jailbreak's. The writer's own safety
   (``mental_health``, a distressed writer) is excluded: that person needs care, not the hardest stance.
"""

from __future__ import annotations

import re
import unicodedata

from pearlpoint.policy import Policy

R2_SEVERITY = 4
CLEARLY_HARMFUL_FOR_R2 = 0.8
MASS_HARM_ALIAS = "explosives"
CARE_CATEGORIES = frozenset({"mental_health"})

# Named agents and devices (not generic words such as "gas" or "chemical", which everyday safety
# questions use): explosives and precursors, chemical / biological / nuclear agents, and the verbs of
# weaponising them. English and Chinese.
_MASS_HARM = re.compile(
    r"\b(?:tatp|hmtd|triacetone triperoxide|acetone peroxide|rdx|petn|hmx|semtex|c-?4 explosive|nitroglycerin[e]?"
    r"|ammonium nitrate (?:bomb|explosive)|anfo|pipe ?bombs?|nail ?bombs?|car ?bombs?|suicide vests?|ieds?"
    r"|improvised explosive|explosive devices?|detonators?|blasting caps?|dirty bombs?"
    r"|sarin|soman|tabun|vx(?: gas| nerve agent)?|novichok|nerve agents?|mustard gas|phosgene|chemical weapons?"
    r"|ricin|abrin|botulinum(?: toxin)?|anthrax|bacillus anthracis|smallpox|plague bacteri\w*|bioweapons?"
    r"|biological weapons?|weaponi[sz]\w*|enrich(?:ed|ing)? uranium|weapons?-grade|nuclear (?:bomb|device|weapon)s?"
    r"|radiological (?:weapon|device)s?)\b"
    r"|炸药|炸弹|爆炸物|雷管|引爆装置|沙林|神经毒剂|芥子气|蓖麻毒素|炭疽|生物武器|化学武器|核武器|脏弹|浓缩铀|三过氧化三丙酮",
    re.IGNORECASE)


def mass_harm_cue(text: str) -> str:
    """The first named means of mass harm in the text ('' when none)."""
    m = _MASS_HARM.search(unicodedata.normalize("NFKC", text or "")[:40_000])
    return m.group(0) if m else ""


# Asking for the making or use of something (not about it): "how do I", steps, recipes, synthesis.
_HOW_TO = re.compile(
    r"\b(?:how (?:do|can|could|would|should) (?:i|we|you|one|someone)|how to|steps?|step-by-step|recipe|"
    r"instructions?|procedure|synthesi[sz]\w*|make|making|build|building|produce|prepare|assemble|"
    r"culture|weaponi[sz]\w*|detonate|deploy)\b|怎么|怎样|如何|步骤|配方|制作|制造|合成|组装|引爆",
    re.IGNORECASE)


def asks_how_to(text: str) -> bool:
    """Does the text ask how to make, build or use something (as opposed to what it is or why)?"""
    return bool(_HOW_TO.search(unicodedata.normalize("NFKC", text or "")[:40_000]))


def mass_harm_category(policy: Policy) -> str | None:
    """The policy's category for weapons/explosives/CBRN (found by alias, so custom policies work)."""
    cat = policy.get(MASS_HARM_ALIAS)
    return cat.id if cat is not None else None


def category_for(top_cat: str, cue: str, policy: Policy) -> str:
    """Rule 1: a harmful request naming a mass-harm means goes to the mass-harm category unless the
    head's own choice is at least as severe."""
    if not cue:
        return top_cat
    target = mass_harm_category(policy)
    if target is None:
        return top_cat
    own, tgt = policy.get(top_cat), policy.get(target)
    if own is not None and tgt is not None and own.severity >= tgt.severity and top_cat not in CARE_CATEGORIES:
        return top_cat
    return target


def severe_enough_for_r2(category: str, p_harm: float, policy: Policy) -> bool:
    """Rule 2: clear harm in a category whose worst outcome is at the top of the scale."""
    if category in CARE_CATEGORIES or category == "none":
        return False
    cat = policy.get(category)
    return cat is not None and cat.severity >= R2_SEVERITY and p_harm >= CLEARLY_HARMFUL_FOR_R2
