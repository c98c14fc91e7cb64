"""Load the game's payoff file: the shipped defaults, with a user's YAML merged over them.

Every mistake in a file (a missing cell, a string where a number belongs, a prior that does not sum
to one, a misspelt strategy) becomes one ``InputError`` naming the file, the line and the dotted key,
because a user editing 100+ numbers by hand needs to be told exactly where to look.
"""

from __future__ import annotations

import difflib
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pearlpoint.errors import InputError
from pearlpoint.game.spec import (
    Distress,
    LeaderStrategy,
    NextState,
    Parameters,
    Payoffs,
    Reaction,
    UserType,
)

DEFAULT_FILE = "payoffs.yaml"
SECTIONS = ("parameters", "user_types", "strategies", "reactions", "reaction_harm", "user_utility",
            "next_states", "distress")
OPTIONAL_SECTIONS = ("next_states", "distress")
PARAMETER_KEYS = ("alpha", "beta", "gamma", "severity_scale", "safety_budget", "default_prior")
SEVERITY_LEVELS = (0, 1, 2, 3, 4)


def default_payoffs_path() -> Path:
    return Path(str(resources.files("pearlpoint.game") / "data" / DEFAULT_FILE))


# ---------------------------------------------------------------------------------------------
# YAML with line numbers


@dataclass
class _Doc:
    """A parsed YAML file plus the line of every key path in it, to point errors at the right line."""

    path: str
    data: dict[str, Any]
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)


def _read_doc(path: Path) -> _Doc:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("payoff file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read payoff file: {exc}", path=path) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", path=path, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("the file must hold a mapping of sections (parameters, strategies, ...)",
                         path=path, line=1)
    lines: dict[tuple[str, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return _Doc(str(path), data, lines)


def _index_lines(node: yaml.Node, prefix: tuple[str, ...], out: dict[tuple[str, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = (*prefix, str(key_node.value))
            out[key] = key_node.start_mark.line + 1
            _index_lines(value_node, key, out)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------------
# Validation


class _Checker:
    """Walks the merged data; knows which file (and line) each key came from."""

    def __init__(self, docs: list[_Doc]) -> None:
        self.docs = docs  # later files win

    def where(self, keys: tuple[str, ...]) -> tuple[str, int | None]:
        # The file that set the key (or its nearest present ancestor); the user's file first.
        for depth in range(len(keys), 0, -1):
            sub = keys[:depth]
            for doc in reversed(self.docs):
                if sub in doc.lines:
                    return doc.path, doc.lines[sub]
        return self.docs[-1].path, None

    def fail(self, keys: tuple[str, ...], message: str) -> InputError:
        path, line = self.where(keys)
        return InputError(message, path=path, line=line, field=".".join(keys))

    # -- scalar checks
    def number(self, value: Any, keys: tuple[str, ...], lo: float | None = None,
               hi: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(keys, f"expected a number, got {type(value).__name__} {value!r}")
        v = float(value)
        if math.isnan(v) or math.isinf(v):
            raise self.fail(keys, f"expected a finite number, got {value!r}")
        if lo is not None and v < lo:
            raise self.fail(keys, f"must be >= {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise self.fail(keys, f"must be <= {hi:g}, got {v:g}")
        return v

    def integer(self, value: Any, keys: tuple[str, ...]) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(keys, f"expected an integer, got {type(value).__name__} {value!r}")
        return int(value)

    def text(self, value: Any, keys: tuple[str, ...]) -> str:
        if not isinstance(value, str):
            raise self.fail(keys, f"expected text, got {type(value).__name__} {value!r}")
        return value

    def mapping(self, value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keys, f"expected a mapping, got {type(value).__name__} {value!r}")
        return value

    def phrases(self, value: Any, keys: tuple[str, ...]) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(keys, f"expected a list of short phrases, got {type(value).__name__}")
        return [self.text(v, (*keys, str(i))) for i, v in enumerate(value)]

    def known_keys(self, mapping: dict[str, Any], allowed: list[str] | tuple[str, ...], keys: tuple[str, ...],
                   what: str) -> None:
        for key in mapping:
            if str(key) not in allowed:
                close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise self.fail((*keys, str(key)),
                                f"unknown {what} '{key}' (known: {', '.join(map(str, allowed))}){hint}")

    def require(self, mapping: dict[str, Any], names: list[str] | tuple[str, ...], keys: tuple[str, ...],
                what: str) -> None:
        for name in names:
            if name not in mapping:
                raise self.fail((*keys, str(name)), f"missing {what} '{name}'")

    def levels(self, value: Any, keys: tuple[str, ...]) -> dict[int, float]:
        table = self.mapping(value, keys)
        out: dict[int, float] = {}
        for raw_key, raw in table.items():
            try:
                level = int(raw_key)
            except (TypeError, ValueError):
                raise self.fail((*keys, str(raw_key)), "severity levels are integers 0-4") from None
            if level not in SEVERITY_LEVELS:
                raise self.fail((*keys, str(raw_key)), "severity levels are integers 0-4")
            out[level] = self.number(raw, (*keys, str(raw_key)), lo=0.0)
        for level in SEVERITY_LEVELS:
            if level not in out:
                raise self.fail((*keys, str(level)), f"missing severity level {level}")
        return out


def _validate(data: dict[str, Any], checker: _Checker, source: str) -> Payoffs:
    c = checker
    keys: tuple[str, ...]
    c.known_keys(data, [*SECTIONS, "replace"], (), "section")
    c.require(data, [s for s in SECTIONS if s not in OPTIONAL_SECTIONS], (), "section")

    # types, reactions, next states first: the tables below are checked against their names
    types_raw = c.mapping(data["user_types"], ("user_types",))
    if not types_raw:
        raise c.fail(("user_types",), "at least one user type is needed")
    user_types = []
    for tid, spec in types_raw.items():
        keys = ("user_types", str(tid))
        spec = c.mapping(spec, keys)
        c.known_keys(spec, ["label", "label_zh", "description"], keys, "field")
        user_types.append(UserType(id=str(tid), label=c.text(spec.get("label", str(tid)), (*keys, "label")),
                                   label_zh=c.text(spec.get("label_zh", ""), (*keys, "label_zh")),
                                   description=c.text(spec.get("description", ""), (*keys, "description"))))
    type_ids = [t.id for t in user_types]

    states_raw = c.mapping(data.get("next_states") or {}, ("next_states",))
    next_states = []
    for nid, spec in states_raw.items():
        keys = ("next_states", str(nid))
        spec = c.mapping(spec, keys)
        c.known_keys(spec, ["label", "label_zh", "discount", "severity_delta", "type_likelihood", "risk"],
                     keys, "field")
        c.require(spec, ["type_likelihood", "risk"], keys, "field")
        lik = c.mapping(spec["type_likelihood"], (*keys, "type_likelihood"))
        risk = c.mapping(spec["risk"], (*keys, "risk"))
        for name, table in (("type_likelihood", lik), ("risk", risk)):
            c.known_keys(table, type_ids, (*keys, name), "user type")
            c.require(table, type_ids, (*keys, name), "user type")
        next_states.append(NextState(
            id=str(nid),
            label=c.text(spec.get("label", str(nid)), (*keys, "label")),
            label_zh=c.text(spec.get("label_zh", ""), (*keys, "label_zh")),
            discount=c.number(spec.get("discount", 0.8), (*keys, "discount"), 0.0, 1.0),
            severity_delta=c.integer(spec.get("severity_delta", 0), (*keys, "severity_delta")),
            type_likelihood={t: c.number(lik[t], (*keys, "type_likelihood", t), 0.0, 1.0) for t in type_ids},
            risk={t: c.number(risk[t], (*keys, "risk", t), 0.0) for t in type_ids},
        ))
    state_ids = [n.id for n in next_states]

    reactions_raw = c.mapping(data["reactions"], ("reactions",))
    if not reactions_raw:
        raise c.fail(("reactions",), "at least one reaction is needed")
    reactions = []
    for rid, spec in reactions_raw.items():
        keys = ("reactions", str(rid))
        spec = c.mapping(spec, keys)
        c.known_keys(spec, ["label", "label_zh", "retention", "uses_reply", "next_state"], keys, "field")
        c.require(spec, ["retention"], keys, "field")
        uses_reply = spec.get("uses_reply", False)
        if not isinstance(uses_reply, bool):
            raise c.fail((*keys, "uses_reply"), f"expected true or false, got {uses_reply!r}")
        nxt = spec.get("next_state")
        if nxt is not None:
            nxt = c.text(nxt, (*keys, "next_state"))
            if nxt not in state_ids:
                raise c.fail((*keys, "next_state"),
                             f"unknown next state '{nxt}' (known: {', '.join(state_ids) or 'none'})")
        reactions.append(Reaction(
            id=str(rid), label=c.text(spec.get("label", str(rid)), (*keys, "label")),
            label_zh=c.text(spec.get("label_zh", ""), (*keys, "label_zh")),
            retention=c.number(spec["retention"], (*keys, "retention"), 0.0, 1.0),
            uses_reply=uses_reply, next_state=nxt))
    reaction_ids = [r.id for r in reactions]

    strategies_raw = c.mapping(data["strategies"], ("strategies",))
    if not strategies_raw:
        raise c.fail(("strategies",), "at least one leader strategy is needed")
    strategies = []
    for sid, spec in strategies_raw.items():
        keys = ("strategies", str(sid))
        spec = c.mapping(spec, keys)
        c.known_keys(spec, ["label", "label_zh", "description", "rank", "cost", "exposure", "safety_phrases",
                            "usefulness_phrases", "safety_phrases_zh", "usefulness_phrases_zh", "steering"],
                     keys, "field")
        c.require(spec, ["rank", "cost", "exposure", "steering"], keys, "field")
        steering = c.mapping(spec["steering"], (*keys, "steering"))
        c.require(steering, ["en"], (*keys, "steering"), "language")
        strategies.append(LeaderStrategy(
            id=str(sid), label=c.text(spec.get("label", str(sid)), (*keys, "label")),
            label_zh=c.text(spec.get("label_zh", ""), (*keys, "label_zh")),
            description=c.text(spec.get("description", ""), (*keys, "description")),
            rank=c.integer(spec["rank"], (*keys, "rank")),
            cost=c.number(spec["cost"], (*keys, "cost"), 0.0, 1.0),
            exposure=c.number(spec["exposure"], (*keys, "exposure"), 0.0, 1.0),
            safety_phrases=c.phrases(spec.get("safety_phrases"), (*keys, "safety_phrases")),
            usefulness_phrases=c.phrases(spec.get("usefulness_phrases"), (*keys, "usefulness_phrases")),
            safety_phrases_zh=c.phrases(spec.get("safety_phrases_zh"), (*keys, "safety_phrases_zh")),
            usefulness_phrases_zh=c.phrases(spec.get("usefulness_phrases_zh"), (*keys, "usefulness_phrases_zh")),
            steering={str(k): c.text(v, (*keys, "steering", str(k))) for k, v in steering.items()},
        ))
    strategy_ids = [s.id for s in strategies]

    params_raw = c.mapping(data["parameters"], ("parameters",))
    c.known_keys(params_raw, PARAMETER_KEYS, ("parameters",), "parameter")
    c.require(params_raw, PARAMETER_KEYS, ("parameters",), "parameter")
    prior_raw = c.mapping(params_raw["default_prior"], ("parameters", "default_prior"))
    c.known_keys(prior_raw, type_ids, ("parameters", "default_prior"), "user type")
    c.require(prior_raw, type_ids, ("parameters", "default_prior"), "user type")
    prior = {t: c.number(prior_raw[t], ("parameters", "default_prior", t), 0.0, 1.0) for t in type_ids}
    if abs(sum(prior.values()) - 1.0) > 1e-6:
        raise c.fail(("parameters", "default_prior"),
                     f"probabilities must sum to one, they sum to {sum(prior.values()):.6g}")
    parameters = Parameters(
        alpha=c.number(params_raw["alpha"], ("parameters", "alpha"), 0.0),
        beta=c.number(params_raw["beta"], ("parameters", "beta"), 0.0),
        gamma=c.number(params_raw["gamma"], ("parameters", "gamma"), 0.0),
        severity_scale=c.levels(params_raw["severity_scale"], ("parameters", "severity_scale")),
        safety_budget=c.levels(params_raw["safety_budget"], ("parameters", "safety_budget")),
        default_prior=prior,
    )

    harm_raw = c.mapping(data["reaction_harm"], ("reaction_harm",))
    c.known_keys(harm_raw, type_ids, ("reaction_harm",), "user type")
    c.require(harm_raw, type_ids, ("reaction_harm",), "user type")
    reaction_harm: dict[str, dict[str, float]] = {}
    for t in type_ids:
        keys = ("reaction_harm", t)
        row = c.mapping(harm_raw[t], keys)
        c.known_keys(row, reaction_ids, keys, "reaction")
        c.require(row, reaction_ids, keys, "cell: reaction")
        reaction_harm[t] = {r: c.number(row[r], (*keys, r), 0.0) for r in reaction_ids}

    util_raw = c.mapping(data["user_utility"], ("user_utility",))
    c.known_keys(util_raw, type_ids, ("user_utility",), "user type")
    c.require(util_raw, type_ids, ("user_utility",), "user type")
    user_utility: dict[str, dict[str, dict[str, float]]] = {}
    for t in type_ids:
        by_strategy = c.mapping(util_raw[t], ("user_utility", t))
        c.known_keys(by_strategy, strategy_ids, ("user_utility", t), "strategy")
        c.require(by_strategy, strategy_ids, ("user_utility", t), "cell: strategy")
        user_utility[t] = {}
        for s in strategy_ids:
            keys = ("user_utility", t, s)
            row = c.mapping(by_strategy[s], keys)
            c.known_keys(row, reaction_ids, keys, "reaction")
            c.require(row, reaction_ids, keys, "cell: reaction")
            user_utility[t][s] = {r: c.number(row[r], (*keys, r)) for r in reaction_ids}

    distress = _distress(data.get("distress"), c, type_ids, strategy_ids, reaction_ids)

    return Payoffs(source=source, parameters=parameters, user_types=tuple(user_types),
                   strategies=tuple(strategies), reactions=tuple(reactions), next_states=tuple(next_states),
                   distress=distress, reaction_harm=reaction_harm, user_utility=user_utility)


def _distress(raw: Any, c: _Checker, type_ids: list[str], strategy_ids: list[str], reaction_ids: list[str]
              ) -> Distress | None:
    """The optional ``distress`` section: a type's second profile, weighted by a share per severity."""
    if raw is None:
        return None
    keys: tuple[str, ...] = ("distress",)
    spec = c.mapping(raw, keys)
    c.known_keys(spec, ["type", "share", "user_utility"], keys, "field")
    c.require(spec, ["type", "share", "user_utility"], keys, "field")
    tid = c.text(spec["type"], (*keys, "type"))
    if tid not in type_ids:
        raise c.fail((*keys, "type"), f"unknown user type '{tid}' (known: {', '.join(type_ids)})")
    share = c.levels(spec["share"], (*keys, "share"))
    for level, value in share.items():
        if value > 1.0:
            raise c.fail((*keys, "share", str(level)), f"must be <= 1, got {value:g}")
    rows = c.mapping(spec["user_utility"], (*keys, "user_utility"))
    c.known_keys(rows, strategy_ids, (*keys, "user_utility"), "strategy")
    utility: dict[str, dict[str, float]] = {}
    for sid, row_raw in rows.items():
        rk = (*keys, "user_utility", str(sid))
        row = c.mapping(row_raw, rk)
        c.known_keys(row, reaction_ids, rk, "reaction")
        c.require(row, reaction_ids, rk, "cell: reaction")
        utility[str(sid)] = {r: c.number(row[r], (*rk, r)) for r in reaction_ids}
    return Distress(type=tid, share=share, user_utility=utility)


# ---------------------------------------------------------------------------------------------
# Public entry points

_CACHE: dict[tuple[str, float], Payoffs] = {}


def load_payoffs(path: str | os.PathLike[str] | None = None) -> Payoffs:
    """The default game, or a user's file merged over it (``replace: true`` in the file: used alone).

    Cached per (path, modification time), so a solve in a hot loop does not re-read YAML.
    """
    default = default_payoffs_path()
    key_path = str(Path(path).expanduser().resolve()) if path is not None else str(default)
    try:
        mtime = os.path.getmtime(key_path)
    except OSError:
        raise InputError("payoff file not found", path=os.fspath(path) if path is not None else None) from None
    cached = _CACHE.get((key_path, mtime))
    if cached is not None:
        return cached
    docs = [_read_doc(default)]
    if path is not None:
        user = _read_doc(Path(path).expanduser())
        replace = user.data.get("replace", False)
        if not isinstance(replace, bool):
            raise InputError(f"expected true or false, got {replace!r}", path=user.path,
                             line=user.lines.get(("replace",)), field="replace")
        docs = [user] if replace else [docs[0], user]
    data: dict[str, Any] = {}
    for doc in docs:
        data = _merge(data, doc.data)
    payoffs = _validate(data, _Checker(docs), source=docs[-1].path)
    _CACHE[(key_path, mtime)] = payoffs
    return payoffs


def payoffs_from_dict(data: dict[str, Any], *, name: str = "<dict>", merge_default: bool = True) -> Payoffs:
    """Build a game from an in-memory mapping (tests, notebooks); same checks as a file."""
    docs = [_read_doc(default_payoffs_path())] if merge_default else []
    merged = docs[0].data if docs else {}
    merged = _merge(merged, data)
    docs.append(_Doc(name, data))
    return _validate(merged, _Checker(docs), source=name)
