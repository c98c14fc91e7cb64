"""Anticipation over a second turn, by backward induction.

Some reactions (rephrase and retry, escalate) do not end the conversation: they lead to a next
state where the model replies again. Stage two is solved first: in each state the posterior is the
prior updated by who tends to reach that state (``type_likelihood``), the severity may rise
(an adversarial rewrite), and the state carries its own harm (a jailbreak sometimes works; a
distressed user who had to push harder is worse off). Each type's stage-two payoff, discounted,
replaces the stage-one cells that lead there (their one-stage numbers are only a myopic stand-in for
the next turn), for the leader, the follower (who anticipates too) and the risk; then stage one is
an ordinary Stackelberg game. A reply that merely blocks, and so invites
escalation, pays for what follows; a reply that de-escalates does not.

Simplification (documented): the stage-two posterior depends on the state, not on which stage-one
strategy led there, so each state is solved once and the whole solve stays well under a millisecond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pearlpoint.game.solver import Game, build_game, solve_pure


@dataclass(frozen=True)
class StatePlan:
    state: str
    posterior: np.ndarray      # [T]
    severity: int
    strategy: int              # the leader's stage-two reply
    reactions: np.ndarray      # [T] each type's stage-two reaction
    leader_value: np.ndarray   # [T] leader utility of stage two (incl. the state's own harm)
    follower_value: np.ndarray  # [T]
    risk_value: np.ndarray     # [T]
    discount: float


def plan_next_states(game: Game) -> list[StatePlan]:
    """Solve every next state of ``game``'s payoffs (stage two) under the same alpha/beta/gamma."""
    payoffs = game.payoffs
    if payoffs is None:
        raise ValueError("a two-stage solve needs a payoff spec (next states), not bare arrays")
    plans = []
    for state in payoffs.next_states:
        lik = np.array([state.type_likelihood[t] for t in payoffs.type_ids])
        post = game.prior * lik
        post = post / post.sum() if post.sum() > 0 else game.prior
        severity = int(min(4, max(0, game.severity + state.severity_delta)))
        inner = build_game(payoffs, post, severity, beta=game.beta, alpha=game.alpha, gamma=game.gamma)
        res = solve_pure(inner)
        s = res.chosen
        reacts = res.responses[:, s]
        types = np.arange(len(post))
        scale = payoffs.severity_scale(severity)
        own = scale * np.array([state.risk[t] for t in payoffs.type_ids])
        plans.append(StatePlan(
            state=state.id, posterior=post, severity=severity, strategy=s, reactions=reacts,
            leader_value=inner.leader[types, s, reacts] - game.beta * own,
            follower_value=inner.follower[types, s, reacts],
            risk_value=inner.risk[types, s, reacts] + own,
            discount=state.discount,
        ))
    return plans


def two_stage_game(game: Game, plans: list[StatePlan] | None = None) -> tuple[Game, list[StatePlan]]:
    """Stage-one game whose cells include the discounted value of the turn they lead to."""
    plans = plan_next_states(game) if plans is None else plans
    follower = game.follower.copy()
    leader = game.leader.copy()
    risk = game.risk.copy()
    assert game.payoffs is not None
    nxt = game.payoffs.tensors().next_state
    for r, n in enumerate(nxt):
        if n < 0:
            continue
        plan = plans[n]
        d = plan.discount
        # The one-stage cell is a myopic stand-in for "what happens next"; here it is computed instead.
        follower[:, :, r] = d * plan.follower_value[:, None]
        leader[:, :, r] = d * plan.leader_value[:, None]
        risk[:, :, r] = d * plan.risk_value[:, None]
    augmented = Game(payoffs=game.payoffs, prior=game.prior, follower=follower, leader=leader, risk=risk,
                     retention=game.retention, budget=game.budget, severity=game.severity,
                     alpha=game.alpha, beta=game.beta, gamma=game.gamma, rank=game.rank)
    return augmented, plans
