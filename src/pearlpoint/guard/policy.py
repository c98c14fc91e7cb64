"""The guard policy as data: per strategy and risk level, trust / check / compose; the checker's
operating points; the streaming window; an optional resources file.

A user's YAML is merged over the packaged default, so a file names only what it changes. Every bad
cell is reported with its file, line and key path, and a failed load never replaces a good policy
(the proxy keeps running on the old one).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pearlpoint.errors import ConfigError

ACTIONS = ("trust", "check", "compose")
LEVELS = ("R0", "R1", "R2")
REASONS = ("complies_declined", "operational_harm", "flat_refusal", "steering_echo", "degenerate", "wrong_language")
DEFAULT_FILE = Path(__file__).parent / "data" / "policy.yaml"
_TOP_KEYS = {"actions", "thresholds", "stream", "resources_file"}


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _line_of(source: str, path: tuple[str, ...]) -> int | None:
    """1-based line of a key path in a YAML text (None when not found): for error messages."""
    try:
        node = yaml.compose(source)
    except yaml.YAMLError:
        return None
    line = None
    for key in path:
        if not isinstance(node, yaml.MappingNode):
            return line
        for k, v in node.value:
            if str(k.value) == key:
                line, node = k.start_mark.line + 1, v
                break
        else:
            return line
    return line


@dataclass(frozen=True)
class GuardPolicy:
    actions: dict[str, dict[str, str]]
    thresholds: dict[str, dict[str, float]]
    window_chars: int = 200
    recheck_chars: int = 200
    resources_file: str = ""
    source: str = "default"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def action_for(self, strategy: str, level: str) -> str:
        cell = self.actions.get(strategy) or self.actions.get("unsteered") or {"default": "check"}
        return cell.get(level, cell.get("default", "check"))

    def threshold(self, reason: str, level: str) -> float:
        cell = self.thresholds.get(reason, {})
        return float(cell.get(level, cell.get("default", 0.5)))

    @classmethod
    def default(cls) -> GuardPolicy:
        return load_guard_policy(None)


def _validate(data: Any, where: str, source_text: str) -> GuardPolicy:
    def bad(path: tuple[str, ...], msg: str) -> ConfigError:
        line = _line_of(source_text, path) if source_text else None
        at = f"{where}:{line}" if line else where
        return ConfigError(f"{at}: guard policy key '{'.'.join(path)}': {msg}")

    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a guard policy must be a mapping of {sorted(_TOP_KEYS)}")
    for k in data:
        if k not in _TOP_KEYS:
            raise bad((str(k),), f"unknown key; expected one of {sorted(_TOP_KEYS)}")
    actions: dict[str, dict[str, str]] = {}
    for strategy, cell in (data.get("actions") or {}).items():
        if isinstance(cell, str):
            cell = {"default": cell}
        if not isinstance(cell, dict):
            raise bad(("actions", str(strategy)), "must be an action name or a mapping of level -> action")
        for lvl, act in cell.items():
            if lvl != "default" and lvl not in LEVELS:
                raise bad(("actions", str(strategy), str(lvl)), f"unknown level; expected default or one of {LEVELS}")
            if act not in ACTIONS:
                raise bad(("actions", str(strategy), str(lvl)), f"'{act}' is not an action; expected one of {ACTIONS}")
        actions[str(strategy)] = {str(k): str(v) for k, v in cell.items()}
    thresholds: dict[str, dict[str, float]] = {}
    for reason, cell in (data.get("thresholds") or {}).items():
        if reason not in REASONS:
            raise bad(("thresholds", str(reason)), f"unknown checker reason; expected one of {REASONS}")
        if not isinstance(cell, dict):
            cell = {"default": cell}
        out: dict[str, float] = {}
        for lvl, v in cell.items():
            if lvl != "default" and lvl not in LEVELS:
                raise bad(("thresholds", str(reason), str(lvl)), f"unknown level; expected default or one of {LEVELS}")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise bad(("thresholds", str(reason), str(lvl)), f"'{v}' is not a number") from None
            if not 0.0 <= f <= 1.0:
                raise bad(("thresholds", str(reason), str(lvl)), f"{f} is outside [0, 1]")
            out[str(lvl)] = f
        thresholds[str(reason)] = out
    stream = data.get("stream") or {}
    if not isinstance(stream, dict):
        raise bad(("stream",), "must be a mapping with window_chars and recheck_chars")
    ints: dict[str, int] = {}
    for key in ("window_chars", "recheck_chars"):
        v = stream.get(key, 200)
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 100_000:
            raise bad(("stream", key), f"'{v}' must be a whole number of characters in [0, 100000]")
        ints[key] = v
    res = data.get("resources_file") or ""
    if not isinstance(res, str):
        raise bad(("resources_file",), "must be a path (string)")
    return GuardPolicy(actions=actions, thresholds=thresholds, window_chars=ints["window_chars"],
                       recheck_chars=max(1, ints["recheck_chars"]), resources_file=res, source=where, raw=data)


@functools.cache
def _default_data() -> tuple[dict, str]:
    text = DEFAULT_FILE.read_text(encoding="utf-8")
    return yaml.safe_load(text), text


def load_guard_policy(path: str | Path | None) -> GuardPolicy:
    """The packaged policy, with ``path`` (if given) merged over it. Raises ConfigError naming the
    file, line and key of the first bad cell."""
    base, base_text = _default_data()
    if not path:
        return _validate(base, str(DEFAULT_FILE), base_text)
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the guard policy ({exc.strerror or exc})") from None
    try:
        over = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{at}: the guard policy is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(over, dict):
        raise ConfigError(f"{p}: a guard policy must be a mapping of {sorted(_TOP_KEYS)}")
    _validate(over, str(p), text)  # names the user's own line for a bad cell
    if over.get("resources_file"):
        rf = Path(over["resources_file"])
        if not rf.is_absolute():
            over = {**over, "resources_file": str((p.parent / rf).resolve())}
    return _validate(_merge(base, over), str(p), "")
