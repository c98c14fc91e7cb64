"""The Stackelberg game between a model (leader) and a user of private type (follower).

>>> from pearlpoint.game import solve
>>> from pearlpoint.risk.schema import RiskAssessment, UserTypePosterior
>>> sol = solve(RiskAssessment(category="mental_health", severity=4,
...             user_types=UserTypePosterior(benign=0.15, vulnerable=0.8, malicious=0.05)))
>>> sol.pearl_point
'constructive_guidance'

Data (types, strategies, reactions, payoffs) lives in ``data/payoffs.yaml``; a user's YAML is
merged over it (``load_payoffs(path)``, ``Settings.payoffs_file``, ``pearl solve --payoffs``).
"""

from pearlpoint.game.api import solve
from pearlpoint.game.explain import Explanation, PredictedReaction
from pearlpoint.game.loader import default_payoffs_path, load_payoffs, payoffs_from_dict
from pearlpoint.game.sensitivity import (
    BETA_GRID,
    BetaPoint,
    PosteriorPoint,
    RegionGrid,
    plot_regions,
    posterior_regions,
    sweep_beta,
    sweep_posterior,
)
from pearlpoint.game.solution import GameSolution, MixedCommitment, NextTurn, StrategyOutcome, TypeReaction
from pearlpoint.game.spec import LeaderStrategy, NextState, Payoffs, Reaction, UserType

__all__ = [
    "BETA_GRID", "BetaPoint", "Explanation", "GameSolution", "LeaderStrategy", "MixedCommitment", "NextState",
    "NextTurn", "Payoffs", "PredictedReaction", "Reaction", "RegionGrid", "StrategyOutcome", "TypeReaction",
    "UserType", "default_payoffs_path", "load_payoffs", "payoffs_from_dict", "plot_regions", "posterior_regions",
    "PosteriorPoint", "solve", "sweep_beta", "sweep_posterior",
]
