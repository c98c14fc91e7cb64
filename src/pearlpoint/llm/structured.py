"""Ask for JSON matching a pydantic model; validate, repair, re-ask; fail with a typed error.

Small models break JSON in predictable ways: a fenced block, prose around the object, single quotes,
Python literals, trailing commas, or an answer cut off by max_tokens. Repair fixes those locally;
if the object still does not validate, the model is asked again with the validation error.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pearlpoint.errors import StructuredOutputError
from pearlpoint.llm.base import GenerationParams, Message, as_messages

T = TypeVar("T", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)


def _balanced_span(text: str) -> str | None:
    """The first JSON object or array in ``text``, closed if the text was cut off."""
    start = next((i for i, ch in enumerate(text) if ch in "{["), None)
    if start is None:
        return None
    stack: list[str] = []
    in_str: str | None = None
    escape = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == in_str:
                in_str = None
            continue
        if ch in "\"'":
            in_str = ch
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if stack:
                stack.pop()
            if not stack:
                return text[start:i + 1]
    # Truncated: close the open string and brackets.
    tail = text[start:]
    if in_str:
        tail += in_str
    tail = re.sub(r",\s*$", "", tail.rstrip())
    tail = re.sub(r':\s*$', ': null', tail)
    tail = re.sub(r'[{,]\s*"[^"]*"$', lambda m: m.group(0)[0] if m.group(0)[0] == "{" else "", tail)
    return tail + "".join(reversed(stack))


def _loads_lenient(span: str) -> Any:
    try:
        return json.loads(span)
    except json.JSONDecodeError:
        pass
    cleaned = re.sub(r",\s*([}\]])", r"\1", span)  # trailing commas
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError:
        pass
    # Single quotes and Python literals: parse as a Python literal, safely.
    py = re.sub(r"\btrue\b", "True", cleaned)
    py = re.sub(r"\bfalse\b", "False", py)
    py = re.sub(r"\bnull\b", "None", py)
    try:
        return ast.literal_eval(py)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    raise ValueError("not valid JSON even after repair")


def extract_json(text: str) -> tuple[Any, bool]:
    """Return ``(value, repaired)``; raise ValueError when nothing JSON-like can be recovered."""
    stripped = text.strip()
    try:
        return json.loads(stripped), False
    except json.JSONDecodeError:
        pass
    candidates = [m.group(1) for m in _FENCE.finditer(stripped)] + [stripped]
    for cand in candidates:
        span = _balanced_span(cand)
        if span is None:
            continue
        try:
            return _loads_lenient(span), True
        except ValueError:
            continue
    raise ValueError("no JSON object found in the model's answer")


@functools.lru_cache(maxsize=256)
def schema_for(model_cls: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a pydantic model, built once per class (it is costly and never changes)."""
    return model_cls.model_json_schema()


@functools.lru_cache(maxsize=256)
def _instruction_cached(schema_json: str, lang: str) -> str:
    from pearlpoint.prompts import render

    return render("llm_json_instruction", lang=lang, schema=schema_json)


def _instruction(schema: dict[str, Any], lang: str) -> str:
    return _instruction_cached(json.dumps(schema, ensure_ascii=False), lang)


async def generate_structured(model: Any, messages: str | list[Message] | list[dict[str, str]],
                              schema_cls: type[T], *, params: GenerationParams | None = None,
                              max_attempts: int = 3, lang: str = "en",
                              add_instruction: bool = True) -> T:
    """Call ``model`` until its answer validates as ``schema_cls`` (at most ``max_attempts`` calls).

    Repairs and re-asks are counted in the model's accounting (``repairs``).
    """
    msgs = as_messages(messages)
    schema = schema_for(schema_cls)
    if add_instruction:
        msgs = [*msgs[:-1], Message(role=msgs[-1].role,
                                    content=msgs[-1].content + "\n\n" + _instruction(schema, lang))]
    params = params or GenerationParams(temperature=0.0, max_tokens=512)
    use_schema = schema if getattr(model, "supports_json_schema", False) else None
    last_error = ""
    raw = ""
    for attempt in range(max_attempts):
        attempt_params = params if attempt == 0 else params.model_copy(
            update={"seed": (params.seed or 0) + attempt,
                    "temperature": params.temperature if params.temperature > 0 else 0.0})
        result = await model.chat(msgs, params=attempt_params, json_schema=use_schema)
        raw = result.text
        try:
            value, repaired = extract_json(raw)
            obj = schema_cls.model_validate(value)
            if repaired or attempt > 0:
                _count_repair(model)
            return obj
        except (ValueError, ValidationError) as exc:
            last_error = _describe(exc)
        # Re-ask with the error; a deterministic model would repeat itself otherwise.
        msgs = [*msgs, Message(role="assistant", content=raw[:2000]),
                Message(role="user", content=_reask(last_error, lang))]
    _count_repair(model)
    raise StructuredOutputError(
        f"{getattr(model, 'name', 'model')}: no valid {schema_cls.__name__} after {max_attempts} attempts: "
        f"{last_error}", raw=raw, attempts=max_attempts)


def _count_repair(model: Any) -> None:
    acc = getattr(model, "accounting", None)
    if acc is not None:
        acc.record(repairs=1)


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()[:5]
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errs)
    return str(exc)


def _reask(error: str, lang: str) -> str:
    from pearlpoint.prompts import render

    return render("llm_json_reask", lang=lang, error=error)
