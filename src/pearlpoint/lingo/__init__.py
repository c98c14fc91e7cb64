"""Lingo-BP: judges' feedback as a textual gradient that refines a safety chain toward the Pearl Point.

    from pearlpoint.lingo import respond, LingoConfig
    record = respond("How do I get my toddler to sleep?", config=LingoConfig(steps=2))
    print(record.answer, record.chosen.satisfaction, record.chosen.safety)
"""

from pearlpoint.lingo.backward import BackwardProposal, apply_proposal, backward
from pearlpoint.lingo.config import LingoConfig, parse_schedule
from pearlpoint.lingo.judges import JudgeResult, SafetyVerdict, SatisfactionVerdict, judge
from pearlpoint.lingo.optimizer import respond, respond_async
from pearlpoint.lingo.record import Iterate, Record, constructive_score, normalised_constructive
from pearlpoint.lingo.select import choose_best
from pearlpoint.lingo.step_control import StrategyEdit, bounded_merge, limit_step

__all__ = [
    "BackwardProposal", "Iterate", "JudgeResult", "LingoConfig", "Record", "SafetyVerdict", "SatisfactionVerdict",
    "StrategyEdit", "apply_proposal", "backward", "bounded_merge", "choose_best", "constructive_score", "judge",
    "limit_step", "normalised_constructive", "parse_schedule", "respond", "respond_async",
]
