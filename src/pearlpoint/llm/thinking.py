"""Separate a reasoning model's thinking from its answer.

Reasoning models either return thinking in a separate field (``reasoning_content``) or inline in
``<think>...</think>`` tags. Callers always get ``(answer, reasoning)``.
"""

from __future__ import annotations

import re

_THINK = re.compile(r"<think>(.*?)</think>", re.DOTALL | re.IGNORECASE)


def split_thinking(text: str) -> tuple[str, str | None]:
    parts = _THINK.findall(text)
    if parts:
        answer = _THINK.sub("", text).strip()
        return answer, "\n".join(p.strip() for p in parts)
    # An unterminated <think> (truncated output): everything after it is reasoning.
    low = text.lower()
    if "<think>" in low and "</think>" not in low:
        i = low.index("<think>")
        return text[:i].strip(), text[i + len("<think>"):].strip()
    # Some servers strip the opening tag: "...reasoning</think>answer".
    if "</think>" in low:
        i = low.index("</think>")
        return text[i + len("</think>"):].strip(), text[:i].strip()
    return text, None


class ThinkStreamFilter:
    """Drop ``<think>`` blocks from a stream of text deltas, keeping the answer text."""

    def __init__(self) -> None:
        self._buf = ""
        self._in_think = False

    def feed(self, delta: str) -> str:
        self._buf += delta
        out = []
        while self._buf:
            if self._in_think:
                j = self._buf.lower().find("</think>")
                if j < 0:
                    self._buf = self._buf[-8:]
                    break
                self._buf = self._buf[j + len("</think>"):]
                self._in_think = False
            else:
                j = self._buf.lower().find("<think>")
                if j < 0:
                    # keep a tail that might be the start of a tag
                    keep = 0
                    for k in range(1, min(7, len(self._buf)) + 1):
                        if "<think>".startswith(self._buf[-k:].lower()):
                            keep = k
                    out.append(self._buf[: len(self._buf) - keep])
                    self._buf = self._buf[len(self._buf) - keep:]
                    break
                out.append(self._buf[:j])
                self._buf = self._buf[j + len("<think>"):]
                self._in_think = True
        return "".join(out)

    def flush(self) -> str:
        rest = "" if self._in_think else self._buf
        self._buf = ""
        return rest
