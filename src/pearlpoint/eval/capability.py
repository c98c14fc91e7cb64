"""General capability checks: multiple choice (answer-letter extraction) and math word problems
(final-number extraction), plus a bridge to lm-evaluation-harness when it is installed.

The point is a side-by-side: safety alignment must not be bought with lost capability.
"""

from __future__ import annotations

import re
from typing import Any

from pearlpoint.errors import PearlError

_LETTER_PATTERNS = [
    re.compile(r"(?:answer|答案|选项|option|choice)\s*(?:is|:|：|为|是)?\s*[\(（\[]?\s*([A-J])\b", re.IGNORECASE),
    re.compile(r"^\s*[\(（\[]?([A-J])[\)）\].:：、]", re.MULTILINE),
    re.compile(r"^\s*([A-J])\s*$", re.MULTILINE),
    re.compile(r"\b([A-J])\b(?=[\)）.:：]?\s*(?:is correct|正确|是正确))", re.IGNORECASE),
]
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def extract_choice(text: str, choices: list[str] | None = None) -> str | None:
    """The chosen letter in a free-text answer; falls back to an option's text quoted in the answer."""
    text = (text or "").strip()
    if not text:
        return None
    n = len(choices) if choices else 10
    valid = "ABCDEFGHIJ"[:n]
    for pat in _LETTER_PATTERNS:
        for m in pat.finditer(text):
            letter = m.group(1).upper()
            if letter in valid:
                return letter
    if choices:
        low = text.lower()
        hits = [i for i, c in enumerate(choices) if c and str(c).strip().lower() in low]
        if len(hits) == 1:
            return valid[hits[0]]
    m = re.search(r"\b([A-J])\b", text[:20])
    if m and m.group(1) in valid:
        return m.group(1)
    return None


def _clean_number(s: str) -> str:
    s = s.replace(",", "")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s or "0"


def extract_final_number(text: str) -> str | None:
    """The final numeric answer: after '####' or 'answer is' when present, else the last number."""
    text = (text or "").replace("\u2212", "-")
    if not text.strip():
        return None
    for marker in ("####", "final answer", "the answer is", "answer:", "答案是", "答案：", "答案:"):
        idx = text.lower().rfind(marker)
        if idx >= 0:
            m = _NUMBER.search(text[idx + len(marker):])
            if m:
                return _clean_number(m.group())
    boxed = re.findall(r"\\boxed\{([^}]*)\}", text)
    if boxed:
        m = _NUMBER.search(boxed[-1])
        if m:
            return _clean_number(m.group())
    nums = _NUMBER.findall(text)
    return _clean_number(nums[-1]) if nums else None


def numbers_equal(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return abs(float(a) - float(b)) < 1e-6
    except ValueError:
        return a.strip() == b.strip()


def grade(item: Any, response: str) -> dict[str, Any]:
    """{'predicted', 'correct'} for an MCQ (has choices) or math (no choices) BenchItem."""
    if item.choices:
        pred = extract_choice(response, item.choices)
        return {"predicted": pred, "correct": pred is not None and pred == item.answer}
    pred = extract_final_number(response)
    return {"predicted": pred, "correct": numbers_equal(pred, item.answer)}


def lm_eval_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("lm_eval") is not None


def run_lm_eval(tasks: list[str], *, base_url: str, model_name: str, limit: int | None = None,
                api_key: str | None = None) -> dict[str, Any]:
    """Run lm-evaluation-harness tasks against an OpenAI-compatible endpoint (local-completions)."""
    if not lm_eval_available():
        raise PearlError("lm-evaluation-harness is not installed: pip install lm-eval")
    import lm_eval  # type: ignore[import-not-found]

    args = f"model={model_name},base_url={base_url.rstrip('/')}/completions,tokenizer_backend=None"
    if api_key:
        import os

        os.environ.setdefault("OPENAI_API_KEY", api_key)
    res = lm_eval.simple_evaluate(model="local-completions", model_args=args, tasks=tasks, limit=limit)
    return {task: {k: v for k, v in vals.items() if isinstance(v, int | float)}
            for task, vals in (res or {}).get("results", {}).items()}
