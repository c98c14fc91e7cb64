"""The guard stage: make the CSA decision hold on the answer that leaves pearlpoint.

decide -> generate -> **guard** -> answer. ``Guard`` holds the policy (trust / check / compose per
strategy and level), the answer checker and the composer; the proxy, Lingo-BP, the data engine,
``pearl eval --csa`` and the Python API all go through it.
"""

from pearlpoint.guard.checker import AnswerChecker, CheckResult, Reason, default_checker
from pearlpoint.guard.composer import Composer, compose, load_resources
from pearlpoint.guard.context import GuardContext
from pearlpoint.guard.policy import GuardPolicy, load_guard_policy
from pearlpoint.guard.stage import Guard, GuardOutcome, advice, get_guard

__all__ = ["AnswerChecker", "CheckResult", "Composer", "Guard", "GuardContext", "GuardOutcome", "GuardPolicy",
           "Reason", "advice", "compose", "default_checker", "get_guard", "load_guard_policy", "load_resources"]
