"""Normalise what callers pass to an assessor: a string, or a chat as messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pearlpoint.errors import InputError

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SURROGATES = re.compile(r"[\ud800-\udfff]")
MAX_CHARS = 2_000_000  # beyond this the input is refused outright (a clear error, not a hang)


def _content(msg: Any) -> tuple[str, str]:
    if isinstance(msg, dict):
        role, content = msg.get("role", "user"), msg.get("content", "")
    else:
        role, content = getattr(msg, "role", "user"), getattr(msg, "content", "")
    if isinstance(content, list):  # OpenAI content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(role), "" if content is None else str(content)


def prepare(text_or_messages: Any) -> str:
    """One clean text: a string as is, or the user turns of a chat joined (multi-turn attacks spread out).

    Control characters, NULs and lone surrogates are dropped; bytes are decoded leniently.
    """
    if text_or_messages is None:
        return ""
    if isinstance(text_or_messages, bytes | bytearray):
        text = bytes(text_or_messages).decode("utf-8", errors="replace")
    elif isinstance(text_or_messages, str):
        text = text_or_messages
    elif isinstance(text_or_messages, Sequence):
        turns = [_content(m) for m in text_or_messages]
        users = [c for r, c in turns if r == "user"] or [c for _, c in turns]
        text = "\n".join(users)
    else:
        raise InputError(f"cannot assess a {type(text_or_messages).__name__}: pass text or a list of messages")
    if len(text) > MAX_CHARS:
        raise InputError(f"text too long to assess ({len(text):,} characters, limit {MAX_CHARS:,})")
    text = _SURROGATES.sub("", _CONTROL.sub(" ", text))
    return text.replace("\ufffd", " ")


def language_of(text: str) -> str:
    try:
        from pearlpoint.prompts import detect_language

        return detect_language(text[:4000])
    except Exception:  # noqa: BLE001 - language is a hint, never a failure
        cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text[:4000])
        return "zh" if cjk >= max(2, 0.15 * len(text[:4000].strip())) else "en"
