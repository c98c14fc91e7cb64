"""``pearl solve``: the Pearl Point of a query (assessed by a model) or of a given posterior (no model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from pearlpoint.commands.common import BaseUrlOpt, ConfigOpt, ModelNameOpt, ModelOpt, settings_from_flags
from pearlpoint.errors import InputError, PearlError


def parse_posterior(text: str) -> dict[str, float]:
    """``benign=0.6,vulnerable=0.3,malicious=0.1`` -> dict; clear errors for anything else."""
    out: dict[str, float] = {}
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise InputError(f"expected type=probability, got '{part}' (e.g. benign=0.6,vulnerable=0.3,malicious=0.1)",
                             field="--posterior")
        key, value = (s.strip() for s in part.split("=", 1))
        try:
            prob = float(value)
        except ValueError:
            raise InputError(f"'{value}' is not a number for type '{key}'", field="--posterior") from None
        if prob < 0:
            raise InputError(f"probability for '{key}' is negative", field="--posterior")
        out[key] = prob
    if not out:
        raise InputError("empty posterior", field="--posterior")
    total = sum(out.values())
    if total <= 0:
        raise InputError("posterior probabilities sum to zero", field="--posterior")
    if abs(total - 1.0) > 0.02:
        raise InputError(f"posterior probabilities sum to {total:g}, not 1", field="--posterior")
    return out


def _short(reaction_id: str) -> str:
    """``rephrase_retry`` -> ``rephrase``: the table must fit 80 columns; the JSON keeps full ids."""
    return reaction_id.split("_")[0]


def _print_human(sol: Any, assessment: Any, lang: str, sweep: list[Any] | None, plot: str | None,
                 shifts: list[Any] | None = None) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: room for the whole table rather than the 80-column default
        console = Console(width=110)
    if assessment is not None:
        console.print(
            f"[bold]assessment[/]  category={assessment.category} level={assessment.level.value} "
            f"intent={assessment.intent.value} harmful_p={assessment.harmful_probability:.2f} "
            f"assessor={assessment.assessor}")
    post = "  ".join(f"{t}={p:.2f}" for t, p in sol.posterior.items())
    console.print(f"[bold]game[/]  category={sol.category} severity={sol.severity} budget={sol.budget:.3f} "
                  f"beta={sol.beta:g}{' two-stage' if sol.two_stage else ''}  posterior: {post}")
    from rich import box

    table = Table(title="leader strategies (each user type's best reaction)", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1))
    table.add_column("strategy", no_wrap=True)
    table.add_column("utility", justify="right", no_wrap=True)
    table.add_column("risk", justify="right", no_wrap=True)
    table.add_column("ok", justify="center", no_wrap=True)
    for t in sol.posterior:
        table.add_column(t, no_wrap=True)
    for o in sol.strategies:
        mark = "★ " if o.id == sol.pearl_point else "  "
        style = "bold green" if o.id == sol.pearl_point else ("dim" if not o.feasible else "")
        table.add_row(f"{mark}{o.id}", f"{o.expected_utility:.3f}", f"{o.expected_risk:.3f}",
                      "yes" if o.feasible else "no", *[_short(o.reactions[t].reaction) for t in sol.posterior],
                      style=style)
    console.print(table)
    title = "Pearl Point: " + sol.chosen.name(lang) + (" [red](over budget: flagged)[/]" if sol.infeasible else "")
    console.print(Panel(sol.explanation.text(lang), title=title, expand=False))
    if sol.next_turn:
        nt = Table(title="anticipated next turn")
        for col in ("type", "reaction", "state", "severity", "planned reply", "their reaction", "value"):
            nt.add_column(col)
        for n in sol.next_turn:
            nt.add_row(n.type, n.reaction, n.state, str(n.severity), n.planned_strategy, n.planned_reaction,
                       f"{n.leader_value:.3f}")
        console.print(nt)
    if sol.mixed is not None:
        m = sol.mixed
        policy = ", ".join(f"{s}={p:.2f}" for s, p in m.policy.items() if p > 1e-9)
        console.print(f"[bold]mixed commitment[/] ({'feasible' if m.feasible else 'budget unreachable'}): "
                      f"{policy}; expected utility {m.expected_utility:.3f} (best pure {m.pure_utility:.3f}), "
                      f"expected risk {m.expected_risk:.3f}", highlight=False)
    if sweep:
        st = Table(title="sensitivity to beta")
        for col in ("beta", "pearl point", "utility", "risk"):
            st.add_column(col)
        for pt in sweep:
            st.add_row(f"{pt.beta:g}", pt.pearl_point + (" (flagged)" if pt.infeasible else ""),
                       f"{pt.expected_utility:.3f}", f"{pt.expected_risk:.3f}")
        console.print(st)
    if shifts:
        pt = Table(title="sensitivity to the user-type posterior (mass moved toward one type)")
        pt.add_column("toward")
        for d in sorted({s.shift for s in shifts}):
            pt.add_column(f"+{d:.0%}")
        for t in dict.fromkeys(s.toward for s in shifts):
            row = [s for s in shifts if s.toward == t]
            pt.add_row(t, *[(f"[bold]{s.pearl_point}[/]" if s.changed else s.pearl_point) for s in row])
        console.print(pt)
    if plot:
        console.print(f"regions plot written to {plot}")


def register(app: typer.Typer) -> None:
    @app.command()
    def solve(
        text: str | None = typer.Argument(None, help="The user's message; omit with --posterior/--category."),
        assessor: str | None = typer.Option(None, "--assessor", help="embedded | llm | cascade (default: config)."),
        posterior: str | None = typer.Option(None, "--posterior",
                                             help="User-type posterior, e.g. benign=0.6,vulnerable=0.3,malicious=0.1."),
        category: str | None = typer.Option(None, "--category", help="Policy category (id, English or Chinese name)."),
        severity: int | None = typer.Option(None, "--severity", min=0, max=4, help="Override the category's severity."),
        beta: float | None = typer.Option(None, "--beta", min=0.0,
                                          help="Weight of risk against retention (default: payoff file, 2.0)."),
        alpha: float | None = typer.Option(None, "--alpha", min=0.0, help="Weight of retention (default: payoff file)."),
        gamma: float | None = typer.Option(None, "--gamma", min=0.0, help="Weight of cost (default: payoff file)."),
        budget: float | None = typer.Option(None, "--budget", min=0.0, help="Override the severity's risk budget."),
        payoffs: Path | None = typer.Option(None, "--payoffs", help="Your payoff YAML, merged over the defaults."),
        mixed: bool = typer.Option(False, "--mixed", help="Also solve the mixed commitment (DOBSS MILP)."),
        two_stage: bool = typer.Option(False, "--two-stage", help="Anticipate the user's next turn."),
        sweep: bool = typer.Option(False, "--sweep", help="Also show the Pearl Point for beta in 0.1..10."),
        plot: Path | None = typer.Option(None, "--plot", help="Write the strategy regions over the type simplex (PNG)."),
        lang: str | None = typer.Option(None, "--lang", help="Language of the explanation: en | zh."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
        model: str | None = ModelOpt,
        model_name: str | None = ModelNameOpt,
        base_url: str | None = BaseUrlOpt,
        config: Path | None = ConfigOpt,
    ) -> None:
        """Find the Pearl Point: the most helpful reply strategy inside the safety budget, and why."""
        from pearlpoint.game import load_payoffs, plot_regions, posterior_regions, sweep_beta, sweep_posterior
        from pearlpoint.game import solve as solve_game
        from pearlpoint.game.api import category_info

        flags = {k: v for k, v in {"model": model, "model_name": model_name, "base_url": base_url,
                                   "assessor": assessor}.items() if v is not None}
        settings = settings_from_flags(config, **flags)
        spec = load_payoffs(payoffs if payoffs is not None else settings.payoffs_file)
        post = parse_posterior(posterior) if posterior else None
        from pearlpoint.policy import get_policy

        policy = get_policy(getattr(settings, "policy_file", None))
        if category is not None:
            policy.find(category)  # unknown name -> one clear error with close matches
        assessment = None
        if text is not None:
            if not text.strip():
                raise PearlError("the text to assess is empty")
            from pearlpoint.risk import get_assessor

            assessment = get_assessor(settings.assessor, settings=settings).assess(text)
        elif post is None and category is None:
            raise PearlError('give a text to assess (pearl solve "...") or --posterior/--category for a model-free solve')
        if lang is None:
            lang = assessment.language if assessment is not None and settings.lang == "auto" else (
                settings.lang if settings.lang != "auto" else "en")
        lang = "zh" if lang.lower().startswith("zh") else "en"
        kw: dict[str, Any] = dict(payoffs=spec, beta=beta, alpha=alpha, gamma=gamma, posterior=post,
                                  category=category, severity=severity, budget=budget, two_stage=two_stage,
                                  policy=policy)
        sol = solve_game(assessment, mixed=mixed, **kw)
        points = sweep_beta(assessment, **{k: v for k, v in kw.items() if k != "beta"}) if sweep else None
        shifts = sweep_posterior(assessment, **kw) if sweep else None
        plot_path = None
        if plot is not None:
            grid = posterior_regions(spec, sol.severity, sol.beta, two_stage=two_stage, alpha=alpha, gamma=gamma)
            name = category_info(sol.category, sol.severity, policy)[2]["en"]
            plot_path = plot_regions(grid, plot, mark=sol.posterior, payoffs=spec,
                                     title=f"Pearl Point regions: {name} (severity {sol.severity}, beta {sol.beta:g})")
        if as_json:
            out: dict[str, Any] = sol.summary()
            out["explanation"]["text"] = sol.explanation.text(lang)
            out["assessment"] = assessment.model_dump(mode="json") if assessment is not None else None
            if points is not None:
                out["sweep"] = [p.model_dump() for p in points]
            if shifts is not None:
                out["posterior_sweep"] = [p.model_dump() for p in shifts]
            if plot_path:
                out["plot"] = plot_path
            typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        else:
            _print_human(sol, assessment, lang, points, plot_path, shifts)
