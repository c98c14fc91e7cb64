"""Load the shipped policy and merge a user's YAML over it (categories merged by id, deep)."""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pearlpoint.errors import ConfigError
from pearlpoint.policy.model import Policy

DEFAULT_POLICY_FILE = "default_policy.yaml"


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{where}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a policy file must be a mapping with 'categories', 'groups', ...")
    return data


def default_policy_data() -> dict[str, Any]:
    text = resources.files("pearlpoint.policy").joinpath("data", DEFAULT_POLICY_FILE).read_text("utf-8")
    return _read_yaml(text, DEFAULT_POLICY_FILE)


def _deep_merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(override)


def merge_policy_data(base: dict[str, Any], user: dict[str, Any], where: str = "policy") -> dict[str, Any]:
    """Merge ``user`` over ``base``. Categories match by ``id``; ``remove: true`` drops one.

    Lists inside a guideline are replaced, not appended: a user who rewrites ``must_not`` wants exactly
    their list.
    """
    merged = _deep_merge({k: v for k, v in base.items() if k != "categories"},
                         {k: v for k, v in user.items() if k != "categories"})
    cats = [copy.deepcopy(c) for c in base.get("categories", [])]
    by_id = {c["id"]: i for i, c in enumerate(cats)}
    user_cats = user.get("categories", []) or []
    if isinstance(user_cats, dict):  # allow the mapping form {id: {...}}
        user_cats = [{"id": k, **(v or {})} for k, v in user_cats.items()]
    if not isinstance(user_cats, list):
        raise ConfigError(f"{where}: 'categories' must be a list of mappings with an 'id'")
    removed: set[str] = set()
    for n, entry in enumerate(user_cats):
        if not isinstance(entry, dict) or not entry.get("id"):
            raise ConfigError(f"{where}: categories[{n}] needs an 'id'")
        cid = str(entry["id"])
        if entry.get("remove"):
            removed.add(cid)
            continue
        if cid in by_id:
            cats[by_id[cid]] = _deep_merge(cats[by_id[cid]], entry)
        else:
            by_id[cid] = len(cats)
            cats.append(copy.deepcopy(entry))
    merged["categories"] = [c for c in cats if c["id"] not in removed]
    return merged


def _build(data: dict[str, Any], where: str) -> Policy:
    groups = data.get("groups") or {}
    if isinstance(groups, dict):
        data = {**data, "groups": {gid: {"id": gid, **(g or {})} for gid, g in groups.items()}}
    try:
        policy = Policy.model_validate({**data, "source": where})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{where}: invalid policy at {loc}: {first['msg']}") from None
    unknown = sorted({c.group for c in policy.categories} - set(policy.groups))
    if unknown:
        raise ConfigError(f"{where}: categories refer to undefined groups: {', '.join(unknown)}")
    if "none" not in policy.ids:
        raise ConfigError(f"{where}: the policy must keep the 'none' category")
    dup = sorted({i for i in policy.ids if policy.ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{where}: duplicate category ids: {', '.join(dup)}")
    return policy


@lru_cache(maxsize=1)
def _default_policy() -> Policy:
    return _build(default_policy_data(), "default")


def load_policy(path: str | Path | None = None) -> Policy:
    """The default policy, or the default with the YAML at ``path`` merged over it."""
    if path is None or str(path) == "":
        return _default_policy()
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"policy file not found: {p}")
    try:
        text = p.read_text("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: policy file is not UTF-8 text") from None
    user = _read_yaml(text, str(p))
    return _build(merge_policy_data(default_policy_data(), user, str(p)), str(p))


def get_policy(path: str | Path | None = None) -> Policy:
    """The policy to use: ``path`` if given, else the ``policy_file`` setting, else the shipped default."""
    if path is None:
        try:
            from pearlpoint.config import get_settings

            path = getattr(get_settings(), "policy_file", None) or None
        except Exception:  # config not importable or invalid env: the default policy still works
            path = None
    return load_policy(path)
