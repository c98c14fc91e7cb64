"""The composer: a constructive reply written from the decision, without the upstream model.

Used for refusal-class strategies (policy ``compose``) and as the fallback when an upstream answer
fails the checker twice. It never returns a fixed string: the reply is built from who is probably
asking, the category's name and guideline (what may be given becomes the offers, the first
must-not item becomes the boundary), the safety chain's usefulness strategies when they are written
for the user, and the category's help resources in the user's language.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from pearlpoint.errors import ConfigError
from pearlpoint.guard.context import GuardContext

_DATA = Path(__file__).parent / "data"
_ZH_VERB = re.compile(r"^(?:提供|给出|教授|传授|介绍|描述|说明|协助|帮助|编写|生成)")
MAX_OFFERS = 3


@functools.cache
def _phrases() -> dict[str, Any]:
    return yaml.safe_load((_DATA / "compose.yaml").read_text(encoding="utf-8"))


def _check_resources(data: Any, where: str) -> dict[str, dict[str, list[str]]]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a resources file must map category -> locale -> list of lines")
    out: dict[str, dict[str, list[str]]] = {}
    for cat, by_lang in data.items():
        if not isinstance(by_lang, dict):
            raise ConfigError(f"{where}: resources key '{cat}': must map a locale (en, zh) to a list of lines")
        for lang, lines in by_lang.items():
            if not isinstance(lines, list) or not all(isinstance(x, str) and x.strip() for x in lines):
                raise ConfigError(f"{where}: resources key '{cat}.{lang}': must be a list of non-empty strings")
        out[str(cat)] = {str(k): list(v) for k, v in by_lang.items()}
    return out


@functools.cache
def _packaged_resources() -> dict[str, dict[str, list[str]]]:
    path = _DATA / "resources.yaml"
    return _check_resources(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def load_resources(path: str | Path | None = None) -> dict[str, dict[str, list[str]]]:
    """The packaged resources, with a user's file merged over them (category by category, locale by locale)."""
    base = copy.deepcopy(_packaged_resources())
    if not path:
        return base
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        data = yaml.safe_load(text) or {}
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the resources file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        raise ConfigError(f"{at}: the resources file is not valid YAML") from None
    for cat, by_lang in _check_resources(data, str(p)).items():
        base.setdefault(cat, {}).update(by_lang)
    return base


def _pick(options: list[str], seed: str) -> str:
    if not options:
        return ""
    h = int(hashlib.sha256(seed.encode("utf-8")).hexdigest()[:8], 16)
    return options[h % len(options)]


def _clause(item: str, lang: str) -> str:
    """A guideline item as a clause inside a sentence."""
    s = item.strip().rstrip(".。；;")
    if lang == "zh":
        return _ZH_VERB.sub("", s)
    return s[:1].lower() + s[1:] if s[:2] != s[:2].upper() else s


def _category(category_id: str, policy: Any) -> Any:
    if not category_id or category_id == "none":
        return None
    try:
        if policy is None:
            from pearlpoint.policy import get_policy

            policy = get_policy()
        return policy.get(category_id)
    except Exception:  # a missing policy leaves the generic phrases
        return None


class Composer:
    def __init__(self, resources: dict[str, dict[str, list[str]]] | None = None, policy: Any = None) -> None:
        self.resources = resources if resources is not None else load_resources()
        self.policy = policy

    def resources_for(self, ctx: GuardContext) -> list[str]:
        lang = "zh" if ctx.lang == "zh" else "en"
        out: list[str] = []
        keys = (["distress"] if ctx.vulnerable else []) + [ctx.category]
        for key in keys:
            for line in self.resources.get(key, {}).get(lang, []):
                if line not in out:
                    out.append(line)
        if not out:
            out = list(self.resources.get("default", {}).get(lang, []))
        return out[:3]

    def compose(self, ctx: GuardContext) -> str:
        lang = "zh" if ctx.lang == "zh" else "en"
        ph = _phrases()[lang]
        cat = _category(ctx.category, self.policy)
        topic = cat.display_name(lang) if cat is not None else ("这个话题" if lang == "zh" else "this topic")
        if lang == "en" and cat is not None:
            topic = topic.lower()
        guide = cat.guideline.get(lang) if cat is not None else None
        if ctx.for_someone_else:  # the one at risk is not the writer: help the helper
            return self._compose_for_helper(ctx, ph, seed=f"{ctx.prompt}|helper")
        # a declined request gets a neutral opening whoever is asking; a vulnerable user a warm one
        who = "vulnerable" if ctx.vulnerable else (
            "malicious" if ctx.refusal_class or ctx.level == "R2" else "benign")
        seed = f"{ctx.prompt}|{ctx.category}|{ctx.strategy}"
        opening = _pick(ph["opening"][who], seed).format(topic=topic)
        must_not = _clause(guide.must_not[0], lang) if guide and guide.must_not else ""
        # nothing was declined and no category applies: the drafts failed on style, not on content, so
        # the reply must not invent a boundary ("I can't help with that part") for a plain question
        answerable = cat is None and not ctx.refusal_class and ctx.level == "R0"
        if ctx.vulnerable and must_not and ctx.category in ("mental_health", "bodily_harm"):
            boundary = ph["boundary_vulnerable"].format(must_not=must_not)
        elif must_not:
            boundary = ph["boundary"].get(ctx.strategy, ph["boundary"]["soft_refusal"]).format(must_not=must_not)
        elif answerable:
            boundary = ph["boundary"]["unanswered"]
        else:
            boundary = ph["boundary"]["fallback"]
        offers: list[str] = list(ph["offers_vulnerable"]) if ctx.vulnerable else []
        if guide:
            offers += [_clause(x, lang) for x in guide.may]
        if answerable and not offers:
            offers = [ph["retry_offer"], ph["general_offer"]]
        offers = offers[:MAX_OFFERS] or [ph["general_offer"]]
        resources = self.resources_for(ctx)
        sep = "\n"
        parts = [f"{opening} {boundary}" if lang == "en" else f"{opening}{boundary}", "",
                 ph["offers_intro"], *[f"- {_sentence_case(o, lang)}" for o in offers]]
        if resources:
            parts += ["", ph["resources_intro"], *[f"- {r}" for r in resources]]
        closing = ph["closing"]["vulnerable" if ctx.vulnerable else "default"]
        parts += ["", closing]
        return sep.join(parts).strip()

    def _compose_for_helper(self, ctx: GuardContext, ph: dict[str, Any], *, seed: str) -> str:
        """For someone worried about a person close to them: what to do now, and who can help."""
        h = ph["helper"]
        parts = [_pick(h["opening"], seed), h["urgent"], "", h["steps_intro"], *[f"- {x}" for x in h["steps"]]]
        resources = self.resources_for(ctx)
        if resources:
            parts += ["", ph["resources_intro"], *[f"- {r}" for r in resources]]
        parts += ["", h["closing"]]
        return "\n".join(parts).strip()


def _sentence_case(text: str, lang: str) -> str:
    if lang == "zh" or not text:
        return text
    return text[:1].upper() + text[1:]


@functools.cache
def _default_composer() -> Composer:
    return Composer()


def compose(ctx: GuardContext) -> str:
    """A reply from the packaged resources and policy (see :class:`Composer` for a custom one)."""
    return _default_composer().compose(ctx)
