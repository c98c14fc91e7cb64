"""Forward pass: from a safety chain, write a short reasoning and the reply the user reads.

One structured call returns ``{"reasoning", "answer"}``. The reasoning is capped in the schema (so a
small model cannot spend its whole token budget thinking) and the answer is cleaned of any sentence
that talks about the private plan ("my safety strategy says ..."): users must read a natural reply.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel, create_model

from pearlpoint.chain.schema import SafetyChain, bounded_text

_META_PATTERNS = {
    "en": [
        r"\bsafety[- ]chain\b",
        r"\b(?:safety|usefulness|helpfulness) (?:strateg(?:y|ies)|guidelines?)\b",
        r"\b(?:my|the|this) private (?:plan|guidance|instructions?)\b",
        r"\b(?:according to|per|following|as instructed by|in line with) (?:my|the) "
        r"(?:plan|guidelines?|strateg(?:y|ies)|polic(?:y|ies)|instructions?)\b",
        r"\b(?:my|the) (?:plan|guidelines?|instructions?) (?:say|says|tell|tells|require|requires)\b",
    ],
    "zh": [r"安全链", r"安全策略", r"有用性策略", r"安全准则", r"私下的?(?:计划|指引|指导)", r"根据(?:我的|该)?(?:计划|准则|策略)"],
}
_SENTENCE = re.compile(r"[^.!?。！？]+(?:[.!?。！？]+[\"')\]」』]*|$)")


class ForwardOutput(BaseModel):
    reasoning: str = ""
    answer: str
    scrubbed: int = 0  # sentences removed because they talked about the plan


@functools.cache
def forward_schema(reasoning_chars: int) -> type[BaseModel]:
    """The JSON shape asked from the model, with the reasoning capped at ``reasoning_chars``."""
    return create_model("ForwardReply", reasoning=(bounded_text(reasoning_chars), ...), answer=(str, ...))


def reasoning_cap(max_tokens: int) -> int:
    """Characters of reasoning allowed for a reply budget: about a third of it, 120..800 chars."""
    return int(max(120, min(800, max_tokens * 1.2)))


def scrub_meta(answer: str, query: str = "", lang: str = "en") -> tuple[str, int]:
    """Drop sentences that refer to the plan, unless the user's own message used those words."""
    patterns = [p for p in _META_PATTERNS["zh" if lang == "zh" else "en"] + (_META_PATTERNS["en"] if lang == "zh" else [])
                if not re.search(p, query, flags=re.IGNORECASE)]
    if not patterns:
        return answer, 0
    meta = re.compile("|".join(f"(?:{p})" for p in patterns), flags=re.IGNORECASE)
    if not meta.search(answer):
        return answer, 0
    removed = 0
    out_lines = []
    for line in answer.split("\n"):
        kept = []
        for sentence in _SENTENCE.findall(line):
            if meta.search(sentence):
                removed += 1
            else:
                kept.append(sentence)
        text = "".join(kept).strip()
        if text or not line.strip():
            out_lines.append(text)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(out_lines)).strip()
    if not cleaned:  # everything was meta: better the raw reply than nothing
        return answer, 0
    return cleaned, removed


def history_dicts(history: list[Any] | None) -> list[dict[str, str]]:
    out = []
    for m in history or []:
        if isinstance(m, dict):
            out.append({"role": str(m.get("role", "user")), "content": str(m.get("content", ""))})
        else:
            out.append({"role": str(getattr(m, "role", "user")), "content": str(getattr(m, "content", ""))})
    return out


def resolve_format(fmt: str, model: Any) -> str:
    """``auto``: plain text on the embedded model (grammar-constrained JSON is slow there and a 135M
    model writes better prose outside a JSON string), JSON elsewhere."""
    if fmt != "auto":
        return fmt
    return "text" if str(getattr(model, "name", "")).startswith("embedded") else "json"


async def forward(chain: SafetyChain, query: str, *, model: Any, lang: str = "en",
                  history: list[Any] | None = None, max_tokens: int = 512, temperature: float = 0.0,
                  max_attempts: int = 2, fmt: str = "json") -> ForwardOutput:
    """Write reasoning + answer for ``query`` following ``chain``. Raises StructuredOutputError.

    ``fmt="json"``: one structured call returns the model's own reasoning and the answer.
    ``fmt="text"``: the model writes only the answer; the reasoning is the chain verbalised.
    ``fmt="auto"``: see :func:`resolve_format`.
    """
    from pearlpoint.llm import GenerationParams, generate_structured
    from pearlpoint.prompts import render, render_messages

    lang = "zh" if lang == "zh" else "en"
    if resolve_format(fmt, model) == "text":
        msgs = render_messages("chain_forward_text", lang=lang, chain=chain.model_dump(), query=query,
                               history=history_dicts(history))
        res = await model.chat(msgs, params=GenerationParams(max_tokens=max_tokens, temperature=temperature))
        text = res.text.strip()
        if not text:
            from pearlpoint.errors import StructuredOutputError

            raise StructuredOutputError(f"{getattr(model, 'name', 'model')}: the forward pass returned an empty answer",
                                        raw=res.text, attempts=1)
        answer, removed = scrub_meta(text, query, lang)
        reasoning = (res.reasoning or "").strip() or render("chain_reasoning", lang=lang, chain=chain.model_dump())
        return ForwardOutput(reasoning=reasoning, answer=answer, scrubbed=removed)
    msgs = render_messages("chain_forward", lang=lang, chain=chain.model_dump(), query=query,
                           history=history_dicts(history))
    params = GenerationParams(max_tokens=max_tokens, temperature=temperature)
    reply = await generate_structured(model, msgs, forward_schema(reasoning_cap(max_tokens)), params=params,
                                      max_attempts=max_attempts, lang=lang)
    raw_answer = str(reply.answer).strip()  # type: ignore[attr-defined]
    if not raw_answer:
        from pearlpoint.errors import StructuredOutputError

        raise StructuredOutputError(f"{getattr(model, 'name', 'model')}: the forward pass returned an empty answer",
                                    raw=reply.model_dump_json(), attempts=max_attempts)
    answer, removed = scrub_meta(raw_answer, query, lang)
    return ForwardOutput(reasoning=str(reply.reasoning).strip(), answer=answer,  # type: ignore[attr-defined]
                         scrubbed=removed)


async def direct_answer(query: str | list[Any], *, model: Any, max_tokens: int = 512,
                        temperature: float = 0.0) -> str:
    """The raw model's reply with no chain at all (the baseline the bench compares against)."""
    from pearlpoint.llm import GenerationParams, as_messages

    res = await model.chat(as_messages(query), params=GenerationParams(max_tokens=max_tokens,
                                                                        temperature=temperature))
    return res.text.strip()
