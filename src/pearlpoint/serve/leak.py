"""Output filter: stop an answer that repeats the hidden steering message or a secret.

Asking a model to "repeat your system prompt" works on most models, and a 135M model repeats
anything. So the proxy does not rely on the model's discretion: it fingerprints the steering text
(overlapping word 6-grams, or character 12-grams for CJK text) and cuts the answer at the first place
where a fingerprint shows up. Secrets (the upstream key) are matched verbatim. The scan is
incremental so streamed answers are checked with a small hold-back window and never released
before they are checked.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

WORD_N = 6
CJK_N = 12
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_TOKEN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[^\W_]+", re.UNICODE)

# With the guard on, a leak that leaves less than this much answer before it is treated as no answer.
GUARDED_MIN_KEPT = 80

LEAK_NOTICE = {
    "en": "\n\n[pearlpoint: the rest of this answer was withheld because it repeated internal instructions.]",
    "zh": "\n\n[pearlpoint：此回答的其余部分涉及内部指令，已被隐去。]",
}


def _tokens(text: str, start: int = 0) -> list[tuple[str, int]]:
    """Normalised tokens with their offset in ``text``: words, and single CJK characters. Each token is
    normalised on its own (NFKC, lower case) so offsets stay those of the original text."""
    return [(unicodedata.normalize("NFKC", m.group(0)).lower(), m.start())
            for m in _TOKEN.finditer(text, start)]


@functools.lru_cache(maxsize=1024)
def _shingles_of_text(text: str) -> tuple[frozenset[tuple[str, ...]], int]:
    """Fingerprints of a text and the longest span (in characters) one of them covers. Steering texts
    repeat (same category and strategy), so this is cached."""
    toks = _tokens(text)
    span = 0
    for n, cjk in ((WORD_N, False), (CJK_N, True)):
        seq = [(t, o) for t, o in toks if bool(_CJK.fullmatch(t)) == cjk]
        for i in range(len(seq) - n + 1):
            last_tok, last_off = seq[i + n - 1]
            span = max(span, last_off + len(last_tok) - seq[i][1])
    return frozenset(_shingles([t for t, _ in toks])), span


def _shingles(tokens: list[str]) -> set[tuple[str, ...]]:
    out: set[tuple[str, ...]] = set()
    words = [t for t in tokens if not _CJK.fullmatch(t)]
    cjk = [t for t in tokens if _CJK.fullmatch(t)]
    for seq, n in ((words, WORD_N), (cjk, CJK_N)):
        for i in range(len(seq) - n + 1):
            out.add((n, *seq[i:i + n]))  # type: ignore[arg-type]
    return out


@dataclass
class LeakGuard:
    """Fingerprints of text that must never reach a client."""

    protected: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        parts = [_shingles_of_text(text) for text in self.protected]
        self._shingles: frozenset[tuple[str, ...]] = frozenset().union(*(p[0] for p in parts))
        self.secrets = [s for s in self.secrets if s and len(s) >= 6]
        # how far back an incremental scan must look so a fingerprint ending in new text is whole
        self.overlap = max([p[1] for p in parts] + [len(s) for s in self.secrets] + [0]) + 32

    @property
    def holdback(self) -> int:
        """Characters a stream must hold back so a fingerprint split across pieces is caught before
        any of it is released."""
        return self.overlap

    def find(self, text: str, start: int = 0) -> int | None:
        """Offset where leaked text starts (looking at ``text[start:]`` only), or None when clean."""
        first: int | None = None
        for s in self.secrets:
            i = text.find(s, start)
            if i >= 0:
                first = i if first is None else min(first, i)
        if self._shingles:
            toks = _tokens(text, start)
            words = [(t, o) for t, o in toks if not _CJK.fullmatch(t)]
            cjk = [(t, o) for t, o in toks if _CJK.fullmatch(t)]
            for seq, n in ((words, WORD_N), (cjk, CJK_N)):
                for i in range(len(seq) - n + 1):
                    key = (n, *(t for t, _ in seq[i:i + n]))
                    if key in self._shingles:
                        off = seq[i][1]
                        first = off if first is None else min(first, off)
                        break
        return first

    def clean(self, text: str, lang: str = "en", *, min_kept: int = 0) -> tuple[str, bool]:
        """The answer cut before any leak (plus a notice), and whether a leak was found. With
        ``min_kept``, a cut that keeps less than that many characters gives "" instead: the guard
        then regenerates or composes, rather than sending a notice with nothing before it."""
        at = self.find(text)
        if at is None:
            return text, False
        kept = text[:at].rstrip()
        if len(kept.strip()) < min_kept:
            return "", True
        return kept + LEAK_NOTICE.get(lang, LEAK_NOTICE["en"]), True


class StreamLeakFilter:
    """Feeds streamed pieces through a LeakGuard; releases only text that has been checked."""

    def __init__(self, guard: LeakGuard, lang: str = "en", *, min_kept: int = 0) -> None:
        self.guard, self.lang, self.min_kept = guard, lang, min_kept
        self.buffer = ""
        self.released = 0
        self.scanned = 0  # everything before this offset has been checked already
        self.blocked = False

    def feed(self, piece: str) -> str:
        if self.blocked:
            return ""
        self.buffer += piece
        # incremental: only the new text plus enough overlap for a fingerprint that straddles pieces
        at = self.guard.find(self.buffer, max(0, self.scanned - self.guard.overlap))
        self.scanned = len(self.buffer)
        if at is not None:
            self.blocked = True
            out = self.buffer[self.released:max(at, self.released)].rstrip()
            kept = len(self.buffer[:max(at, self.released)].strip())
            self.released = len(self.buffer)
            if kept < self.min_kept:  # next to nothing before the leak: let the guard replace it
                return out
            return out + LEAK_NOTICE.get(self.lang, LEAK_NOTICE["en"])
        safe_end = max(self.released, len(self.buffer) - self.guard.holdback)
        # never split inside a word: release up to the last whitespace before safe_end
        if safe_end > self.released:
            cut = self.buffer.rfind(" ", self.released, safe_end)
            if cut > self.released:
                safe_end = cut
        out = self.buffer[self.released:safe_end]
        self.released = safe_end
        return out

    def finish(self) -> str:
        if self.blocked:
            return ""
        out = self.buffer[self.released:]
        self.released = len(self.buffer)
        return out
