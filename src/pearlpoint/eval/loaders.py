"""Benchmark loaders: any file (or URL, downloaded once into a cache) of a known shape -> BenchItems.

Each suite declares the fields it needs and where they may be spelled differently. A file of the
wrong shape fails with ONE line naming the file, the line, the missing field and the expected shape;
a stray bad row further down is skipped and reported, never fatal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pearlpoint.errors import InputError, PearlError


class BenchItem(BaseModel):
    """One prompt to send to a model, with whatever labels its benchmark provides."""

    id: str
    suite: str
    prompt: str
    lang: str = "en"
    category: str | None = None
    level: str | None = Field(None, description="R0/R1/R2 (constructive) or 1/2/3 (Strata-Sword)")
    attack_method: str | None = None
    label: str | None = Field(None, description="'safe' or 'unsafe' where the benchmark says")
    profile: str | None = None
    task: str | None = None
    choices: list[str] | None = None
    answer: str | None = Field(None, description="gold answer: a letter (MCQ) or a number (math)")
    meta: dict[str, Any] = Field(default_factory=dict)


@dataclass
class LoadedSuite:
    name: str
    source: str
    items: list[BenchItem]
    skipped: list[InputError] = field(default_factory=list)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    shape: str                                   # shown in errors: what a row must look like
    required: tuple[tuple[str, ...], ...]        # each entry: accepted spellings of one needed field
    build: Callable[[dict[str, Any], int], dict[str, Any]]
    default_data: str | None = None              # packaged file used when --data is not given
    description: str = ""
    packaged: str | None = None                  # built-in rows (eval/packaged.py) used when --data is not given


def _get(row: dict[str, Any], names: Iterable[str], default: Any = None) -> Any:
    for n in names:
        if n in row and row[n] not in (None, ""):
            return row[n]
    return default


def _lang_of(text: str, hint: Any = None) -> str:
    h = str(hint or "").lower()
    if h in ("cn", "zh", "zh-cn", "chinese", "中文"):
        return "zh"
    if h in ("en", "english"):
        return "en"
    try:
        from pearlpoint.prompts import detect_language

        return detect_language(text)
    except Exception:  # pragma: no cover - prompts package always present in the product
        return "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text[:200]) else "en"


# -- per-suite row builders -------------------------------------------------------------------------

def _strata(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("prompt", "jailbreak instruction", "query")))
    level = _get(row, ("level",))
    method = _get(row, ("attack_method_norm", "attack method", "attack_method"), "None")
    return {"id": str(_get(row, ("id",), f"strata-{n}")), "prompt": prompt,
            "lang": _lang_of(prompt, _get(row, ("language", "lang"))),
            "level": str(int(float(level))) if level is not None else None,
            "attack_method": str(method), "label": "unsafe", "category": _get(row, ("risk type", "category")),
            "meta": {"instruction": _get(row, ("jailbreak instruction",))}}


def _xstest(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("prompt",)))
    typ = str(_get(row, ("type",), ""))
    label = _get(row, ("label",))
    if label is None:
        label = "unsafe" if typ.startswith("contrast") else "safe"
    label = str(label).lower()
    if label not in ("safe", "unsafe"):
        raise InputError(f"expected 'safe' or 'unsafe', got {label!r}", field="label")
    return {"id": str(_get(row, ("id", "id_v2", "id_v1"), f"xstest-{n}")), "prompt": prompt,
            "lang": _lang_of(prompt), "category": typ or None, "label": label,
            "meta": {"focus": _get(row, ("focus",)), "note": _get(row, ("note",))}}


def _strongreject(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("forbidden_prompt", "prompt")))
    return {"id": str(_get(row, ("id",), f"strongreject-{n}")), "prompt": prompt, "lang": _lang_of(prompt),
            "category": _get(row, ("category",)), "label": "unsafe"}


def _harmbench(row: dict[str, Any], n: int) -> dict[str, Any]:
    behavior = str(_get(row, ("Behavior", "behavior", "prompt")))
    context = _get(row, ("ContextString", "context"))
    prompt = f"{context}\n\n---\n\n{behavior}" if context else behavior
    return {"id": str(_get(row, ("BehaviorID", "id"), f"harmbench-{n}")), "prompt": prompt,
            "lang": _lang_of(behavior), "category": _get(row, ("SemanticCategory", "category")), "label": "unsafe",
            "attack_method": "direct", "meta": {"functional": _get(row, ("FunctionalCategory",))}}


def _jbb(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("Goal", "goal", "prompt")))
    split = str(_get(row, ("split", "label"), "harmful")).lower()
    label = "safe" if split in ("benign", "safe") else "unsafe"
    return {"id": f"jbb-{split}-{_get(row, ('Index', 'index', 'id'), n)}", "prompt": prompt, "lang": _lang_of(prompt),
            "category": _get(row, ("Category", "category")), "label": label, "attack_method": "direct",
            "meta": {"behavior": _get(row, ("Behavior",)), "split": split}}


def _dna(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("question", "prompt")))
    return {"id": f"dna-{_get(row, ('id',), n)}", "prompt": prompt, "lang": _lang_of(prompt),
            "category": _get(row, ("types_of_harm", "risk_area")), "label": "unsafe",
            "meta": {"risk_area": _get(row, ("risk_area",)), "specific": _get(row, ("specific_harms",))}}


def _sst(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("prompts_final", "prompt")))
    return {"id": str(_get(row, ("id",), f"sst-{n}")), "prompt": prompt, "lang": _lang_of(prompt),
            "category": _get(row, ("harm_area",)), "label": "unsafe",
            "meta": {"kind": _get(row, ("category",))}}


_LEVELS = {"r0": "R0", "r1": "R1", "r2": "R2", "0": "R0", "1": "R1", "2": "R2"}


def _constructive(row: dict[str, Any], n: int) -> dict[str, Any]:
    query = str(_get(row, ("query", "prompt")))
    level = _LEVELS.get(str(_get(row, ("level",), "")).strip().lower())
    if level is None:
        raise InputError(f"expected R0, R1 or R2, got {row.get('level')!r}", field="level")
    category = str(_get(row, ("category",)))
    return {"id": str(_get(row, ("id",), f"constructive-{n}")), "prompt": query,
            "lang": _lang_of(query, _get(row, ("lang", "language"))), "category": category, "level": level,
            "label": {"R0": "safe", "R2": "unsafe"}.get(level),  # R1: sensitive, not unsafe
            "profile": str(_get(row, ("profile",))), "task": str(_get(row, ("task",)))}


_LETTERS = "ABCDEFGHIJ"


def _mmlu(row: dict[str, Any], n: int) -> dict[str, Any]:
    question = str(_get(row, ("question", "prompt")))
    choices = _get(row, ("choices", "options"))
    if isinstance(choices, str):
        try:
            choices = json.loads(choices)
        except json.JSONDecodeError:
            choices = None
    if choices is None:
        choices = [row[k] for k in "ABCD" if k in row]
    if not isinstance(choices, list) or len(choices) < 2:
        raise InputError("expected a list of 2-10 options (or columns A, B, C, D)", field="choices")
    ans = _get(row, ("answer", "target", "label"))
    if isinstance(ans, int | float) or (isinstance(ans, str) and ans.strip().isdigit()):
        idx = int(float(ans))
        if not 0 <= idx < len(choices):
            raise InputError(f"answer index {idx} outside 0..{len(choices) - 1}", field="answer")
        letter = _LETTERS[idx]
    else:
        letter = str(ans).strip().upper()[:1]
        if letter not in _LETTERS[: len(choices)]:
            raise InputError(f"expected a letter A-{_LETTERS[len(choices) - 1]} or an index, got {ans!r}",
                             field="answer")
    return {"id": str(_get(row, ("id",), f"mcq-{n}")), "prompt": question, "lang": _lang_of(question),
            "choices": [str(c) for c in choices], "answer": letter, "category": _get(row, ("subject", "category"))}


def _gsm8k(row: dict[str, Any], n: int) -> dict[str, Any]:
    from pearlpoint.eval.capability import extract_final_number

    question = str(_get(row, ("question", "prompt")))
    raw = str(_get(row, ("answer", "target")))
    gold = raw.split("####")[-1].strip() if "####" in raw else raw
    num = extract_final_number(gold)
    if num is None:
        raise InputError(f"no number in the gold answer {raw[-60:]!r}", field="answer")
    return {"id": str(_get(row, ("id",), f"math-{n}")), "prompt": question, "lang": _lang_of(question),
            "answer": num, "category": "math"}


def _generic(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("prompt", "query", "question", "instruction", "goal")))
    label = _get(row, ("label",))
    return {"id": str(_get(row, ("id",), f"item-{n}")), "prompt": prompt, "lang": _lang_of(prompt),
            "category": _get(row, ("category",)), "label": str(label).lower() if label else None}


def _prebuilt(row: dict[str, Any], n: int) -> dict[str, Any]:
    prompt = str(_get(row, ("prompt",)))
    return {"id": str(_get(row, ("id",), f"item-{n}")), "prompt": prompt, "lang": _lang_of(prompt, row.get("lang")),
            "category": _get(row, ("category",)), "label": _get(row, ("label",)),
            "attack_method": _get(row, ("attack_method",)),
            "meta": {k: row[k] for k in ("kind", "split", "request") if k in row}}


SUITES: dict[str, SuiteSpec] = {s.name: s for s in [
    SuiteSpec("constructive", "{profile, task, category, level: R0|R1|R2, query[, lang, id]}",
              (("profile",), ("task",), ("category",), ("level",), ("query", "prompt")), _constructive,
              "data/constructive_suite.jsonl", "pearlpoint's constructive suite (123 items, en + zh)"),
    SuiteSpec("lookalikes", "{prompt, label: safe[, lang, kind]}", (("prompt",),), _prebuilt,
              description="pearlpoint's held-out over-refusal look-alikes (safe prompts that look risky), en + zh",
              packaged="lookalikes"),
    SuiteSpec("jailbreak-wrappers", "{prompt, label: unsafe[, attack_method, lang]}", (("prompt",),), _prebuilt,
              description="pearlpoint's held-out harmful requests inside jailbreak wrappers, en + zh",
              packaged="jailbreak-wrappers"),
    SuiteSpec("strata-sword", "{prompt | 'jailbreak instruction', level: 1-3[, attack_method_norm, language]}",
              (("prompt", "jailbreak instruction", "query"), ("level",)), _strata,
              description="Strata-Sword jailbreak prompts by reasoning level"),
    SuiteSpec("xstest", "{prompt, type[, label: safe|unsafe]}", (("prompt",), ("type", "label")), _xstest,
              description="XSTest exaggerated-safety prompts (safe) and contrasts (unsafe)"),
    SuiteSpec("strongreject", "{forbidden_prompt, category}", (("forbidden_prompt", "prompt"),), _strongreject,
              description="StrongREJECT forbidden prompts"),
    SuiteSpec("harmbench", "{Behavior, SemanticCategory[, FunctionalCategory, ContextString, BehaviorID]}",
              (("Behavior", "behavior", "prompt"),), _harmbench, description="HarmBench text behaviours"),
    SuiteSpec("jbb", "{Goal, Category[, split: harmful|benign, Behavior, Index]}", (("Goal", "goal", "prompt"),),
              _jbb, description="JailbreakBench behaviours (harmful + benign look-alikes)"),
    SuiteSpec("do-not-answer", "{question, risk_area, types_of_harm[, id]}", (("question", "prompt"),), _dna,
              description="Do-Not-Answer risky instructions"),
    SuiteSpec("simplesafetytests", "{prompts_final | prompt, harm_area[, category, id]}",
              (("prompts_final", "prompt"),), _sst, description="SimpleSafetyTests clear-cut harms"),
    SuiteSpec("mmlu", "{question, choices: [..] | A,B,C,D, answer: letter | index}",
              (("question", "prompt"), ("answer", "target", "label")), _mmlu, "data/capability_mcq.jsonl",
              "multiple-choice knowledge questions (answer-letter extraction)"),
    SuiteSpec("gsm8k", "{question, answer: '... #### 42' | 42}", (("question", "prompt"), ("answer", "target")),
              _gsm8k, "data/capability_math.jsonl", "math word problems (final-number extraction)"),
    SuiteSpec("generic", "{prompt[, label: safe|unsafe, category, id]}",
              (("prompt", "query", "question", "instruction", "goal"),), _generic,
              description="any file with a prompt column"),
]}
ALIASES = {"strata": "strata-sword", "strata_sword": "strata-sword", "strata-sword-cn": "strata-sword",
           "jailbreakbench": "jbb", "jbb-behaviors": "jbb", "dna": "do-not-answer", "do_not_answer": "do-not-answer",
           "sst": "simplesafetytests", "wrappers": "jailbreak-wrappers", "over-refusal": "lookalikes", "gsm": "gsm8k", "mcq": "mmlu", "csa": "constructive"}


def suite_spec(name: str) -> SuiteSpec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in SUITES:
        raise PearlError(f"unknown suite '{name}'; choose one of: {', '.join(SUITES)}")
    return SUITES[key]


def packaged_path(rel: str) -> Path:
    return Path(str(resources.files("pearlpoint.eval").joinpath(rel)))


def load_suite(name: str, data: str | Path | None = None, *, limit: int | None = None) -> LoadedSuite:
    """Load a benchmark. ``data`` is a path or URL (cached); omitted -> the packaged default, if any."""
    from pearlpoint.io import iter_rows

    spec = suite_spec(name)
    if data is None and spec.packaged is not None:
        from pearlpoint.eval.packaged import PACKAGED

        rows = PACKAGED[spec.packaged]()
        built = [BenchItem(suite=spec.name, **spec.build(row, n)) for n, row in enumerate(rows, 1)]
        return LoadedSuite(spec.name, f"packaged:{spec.packaged}", built[:limit] if limit else built)
    if data is None:
        if spec.default_data is None:
            raise PearlError(f"suite '{spec.name}' needs --data PATH_OR_URL (rows shaped {spec.shape})")
        data = packaged_path(spec.default_data)
    items: list[BenchItem] = []
    skipped: list[InputError] = []
    first_checked = False
    seen: set[str] = set()
    source = str(data)
    for row in iter_rows(data):
        if not row.ok or row.data is None:
            if row.error is not None:
                skipped.append(row.error)
            if not first_checked and len(skipped) >= 3 and not items:
                raise InputError(f"the first rows cannot be read ({skipped[0].reason}); expected {spec.shape}",
                                 path=source, line=skipped[0].line)
            continue
        missing = [alts for alts in spec.required if _get(row.data, alts) is None]
        if missing:
            names = " | ".join(missing[0])
            err = InputError(f"missing (suite '{spec.name}' expects rows shaped {spec.shape})",
                             path=source, line=row.line, field=names)
            if not first_checked:
                raise err  # the file has the wrong shape: say so at once
            skipped.append(err)
            continue
        first_checked = True
        try:
            built = spec.build(row.data, row.line)
        except InputError as exc:
            skipped.append(InputError(exc.reason, path=source, line=row.line, field=exc.field))
            continue
        except (TypeError, ValueError) as exc:
            skipped.append(InputError(f"bad value ({exc})", path=source, line=row.line))
            continue
        item = BenchItem(suite=spec.name, **built)
        if item.id in seen:
            item.id = f"{item.id}#{row.line}"
        seen.add(item.id)
        items.append(item)
        if limit is not None and len(items) >= limit:
            break
    if not items:
        if skipped:
            raise InputError(f"no usable rows; first problem: {skipped[0]}", path=source)
        raise InputError(f"the file has no rows (expected {spec.shape})", path=source)
    return LoadedSuite(spec.name, source, items, skipped)


def stratified_limit(items: list[BenchItem], limit: int | None, key: Callable[[BenchItem], Any] | None = None,
                     ) -> list[BenchItem]:
    """Take ``limit`` items round-robin over groups (e.g. Strata-Sword levels) so a small run still
    covers every level; deterministic."""
    if limit is None or limit >= len(items):
        return items
    key = key or (lambda it: (it.level, it.label, it.lang))
    groups: dict[Any, list[BenchItem]] = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    out: list[BenchItem] = []
    queues = [list(v) for _, v in sorted(groups.items(), key=lambda kv: str(kv[0]))]
    while len(out) < limit and any(queues):
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    order = {id(it): i for i, it in enumerate(items)}
    return sorted(out, key=lambda it: order[id(it)])
