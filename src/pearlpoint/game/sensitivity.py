"""How the Pearl Point moves with beta and with the user-type posterior, and a plot of the regions.

The regions plot draws the simplex of (benign, vulnerable, malicious) posteriors as a triangle and
colours each point by the strategy the solver picks there, so a reader can see at a glance where the
model answers, guides or refuses for a category's severity.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from pearlpoint.errors import PearlError
from pearlpoint.game.solver import build_game, solve_pure
from pearlpoint.game.spec import Payoffs
from pearlpoint.game.two_stage import two_stage_game

BETA_GRID: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0)


class BetaPoint(BaseModel):
    beta: float
    pearl_point: str
    rank: int
    expected_utility: float
    expected_risk: float
    infeasible: bool


def sweep_beta(assessment: object = None, betas: Sequence[float] = BETA_GRID, **kw: object) -> list[BetaPoint]:
    """Solve the same query at every beta (default: the paper's grid)."""
    from pearlpoint.game.api import solve

    out = []
    for b in betas:
        sol = solve(assessment, beta=float(b), **kw)  # type: ignore[arg-type]
        o = sol.outcome(sol.pearl_point)
        out.append(BetaPoint(beta=float(b), pearl_point=sol.pearl_point, rank=sol.chosen.rank,
                             expected_utility=o.expected_utility, expected_risk=o.expected_risk,
                             infeasible=sol.infeasible))
    return out


class PosteriorPoint(BaseModel):
    toward: str
    shift: float
    posterior: dict[str, float]
    pearl_point: str
    rank: int
    changed: bool


def sweep_posterior(assessment: object = None, shifts: Sequence[float] = (0.1, 0.25, 0.5), **kw: object
                    ) -> list[PosteriorPoint]:
    """Move the posterior part of the way toward each type's corner, p' = (1-d) p + d e_t, and re-solve.

    Answers "how sure of the user's type does the model have to be for the answer to change?".
    """
    from pearlpoint.game.api import solve

    kw = dict(kw)
    base_post = kw.pop("posterior", None)
    base = solve(assessment, posterior=base_post, **kw)  # type: ignore[arg-type]
    out = []
    for t in base.posterior:
        for d in shifts:
            post = {u: (1 - d) * p + (d if u == t else 0.0) for u, p in base.posterior.items()}
            sol = solve(assessment, posterior=post, **kw)  # type: ignore[arg-type]
            out.append(PosteriorPoint(toward=t, shift=float(d), posterior=post, pearl_point=sol.pearl_point,
                                      rank=sol.chosen.rank, changed=sol.pearl_point != base.pearl_point))
    return out


@dataclass(frozen=True)
class RegionGrid:
    """Pearl Point at each posterior on a regular grid of the 3-type simplex."""

    posteriors: np.ndarray   # [N, 3] (benign, vulnerable, malicious order of the payoffs' types)
    choice: np.ndarray       # [N] strategy index
    infeasible: np.ndarray   # [N] bool
    strategy_ids: list[str]
    type_ids: list[str]
    severity: int
    beta: float

    def share(self) -> dict[str, float]:
        """Fraction of the simplex each strategy wins."""
        counts = np.bincount(self.choice, minlength=len(self.strategy_ids))
        return {s: float(c) / len(self.choice) for s, c in zip(self.strategy_ids, counts, strict=True)}


def simplex_grid(steps: int) -> np.ndarray:
    pts = [(i / steps, j / steps, (steps - i - j) / steps)
           for i in range(steps + 1) for j in range(steps + 1 - i)]
    return np.array(pts)


def posterior_regions(payoffs: Payoffs, severity: int, beta: float = 2.0, *, steps: int = 40,
                      two_stage: bool = False, alpha: float | None = None, gamma: float | None = None
                      ) -> RegionGrid:
    """Solve on every point of a simplex grid (steps=40: 861 solves, well under a second)."""
    if len(payoffs.type_ids) != 3:
        raise ValueError("the regions plot needs exactly three user types")
    pts = simplex_grid(steps)
    choice = np.empty(len(pts), dtype=int)
    infeasible = np.zeros(len(pts), dtype=bool)
    for i, p in enumerate(pts):
        game = build_game(payoffs, p, severity, beta=beta, alpha=alpha, gamma=gamma)
        if two_stage:
            game, _ = two_stage_game(game)
        res = solve_pure(game)
        choice[i] = res.chosen
        infeasible[i] = res.infeasible
    return RegionGrid(pts, choice, infeasible, payoffs.strategy_ids, payoffs.type_ids, severity, beta)


def _to_xy(p: np.ndarray) -> np.ndarray:
    # corners: type0 bottom-left, type1 bottom-right, type2 top
    x = p[:, 1] + 0.5 * p[:, 2]
    y = (np.sqrt(3) / 2) * p[:, 2]
    return np.stack([x, y], axis=1)


def plot_regions(grid: RegionGrid, path: str | os.PathLike[str], *, title: str | None = None,
                 mark: dict[str, float] | None = None, payoffs: Payoffs | None = None) -> str:
    """Draw the strategy regions over the simplex; ``mark`` puts a star at one posterior."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch
    from matplotlib.tri import Triangulation

    xy = _to_xy(grid.posteriors)
    tri = Triangulation(xy[:, 0], xy[:, 1])
    palette = ["#1a9850", "#91cf60", "#d9ef8b", "#4575b4", "#fc8d59", "#d73027", "#762a83", "#999999"]
    n = len(grid.strategy_ids)
    cmap = ListedColormap([palette[i % len(palette)] for i in range(n)])
    fig, ax = plt.subplots(figsize=(6.4, 5.8), dpi=120)
    # colour each small triangle by the choice at its first vertex: crisp regions, no interpolation
    face = grid.choice[tri.triangles].max(axis=1)
    ax.tripcolor(tri, facecolors=face, cmap=cmap, vmin=-0.5, vmax=n - 0.5, edgecolors="none")
    if grid.infeasible.any():
        bad = xy[grid.infeasible]
        ax.scatter(bad[:, 0], bad[:, 1], marker="x", s=6, c="black", linewidths=0.5, label="over budget")
    corners = np.array([[0, 0], [1, 0], [0.5, np.sqrt(3) / 2], [0, 0]])
    ax.plot(corners[:, 0], corners[:, 1], color="black", linewidth=1)
    names = grid.type_ids
    ax.text(-0.03, -0.05, names[0], ha="right", va="top")
    ax.text(1.03, -0.05, names[1], ha="left", va="top")
    ax.text(0.5, np.sqrt(3) / 2 + 0.03, names[2], ha="center", va="bottom")
    if mark is not None:
        p = np.array([[mark.get(t, 0.0) for t in names]])
        p = p / p.sum()
        m = _to_xy(p)[0]
        ax.scatter([m[0]], [m[1]], marker="*", s=220, c="white", edgecolors="black", zorder=5)
    labels = grid.strategy_ids
    if payoffs is not None:
        labels = [payoffs.strategy(s).label for s in grid.strategy_ids]
    used = sorted(set(grid.choice.tolist()))
    handles: list[Any] = [Patch(color=cmap(i), label=labels[i]) for i in used]
    if grid.infeasible.any():
        from matplotlib.lines import Line2D

        handles.append(Line2D([], [], marker="x", linestyle="none", color="black", markersize=5,
                              label="over budget: safest shown, flagged"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=False, bbox_to_anchor=(1.08, 1.0))
    ax.set_title(title or f"Pearl Point regions (severity {grid.severity}, beta {grid.beta:g})", pad=28)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    out = os.fspath(Path(path).expanduser())
    try:
        # a report path like runs/today/regions.png: make its folder rather than fail on it
        folder = Path(out).parent
        if folder.exists() and not folder.is_dir():
            raise PearlError(f"cannot write the regions plot to {out}: {folder} is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fig.savefig(out)
    except OSError as exc:
        raise PearlError(f"cannot write the regions plot to {out}: {exc.strerror or exc}") from None
    except ValueError as exc:  # matplotlib: an extension it cannot write (.xyz)
        raise PearlError(f"cannot write the regions plot to {out}: {exc}") from None
    finally:
        plt.close(fig)
    return out
