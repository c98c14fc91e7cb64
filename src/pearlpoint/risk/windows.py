"""Windowed reading of long inputs.

all-MiniLM-L6-v2 reads at most 256 word pieces; an attack can bury its request after pages of filler.
We cut the text into overlapping windows of ``WINDOW_TOKENS`` word pieces and score each one. Up to
``MAX_WINDOWS`` windows are read (about 7,000 word pieces, roughly 25-30k English characters or 7k
Chinese characters); beyond that the windows are spread evenly over the text, always including the
first and the last, and the assessment carries a ``long_input`` signal saying how much was read. The
regex cues (features.py) additionally scan the first and last 20k characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

WINDOW_TOKENS = 200
OVERLAP_TOKENS = 40
MAX_WINDOWS = 32
SHORT_CHARS = 600  # below this no tokenisation is needed: one window


@dataclass
class Windowing:
    windows: list[str]
    total: int  # windows the whole text would need
    read: int  # windows actually read

    @property
    def coverage(self) -> float:
        return self.read / self.total if self.total else 1.0


def split_windows(text: str, tokenizer: Any | None = None, window: int = WINDOW_TOKENS,
                  overlap: int = OVERLAP_TOKENS, max_windows: int = MAX_WINDOWS) -> Windowing:
    """Overlapping windows by word-piece offsets (character estimate when no tokenizer is given)."""
    if len(text) <= SHORT_CHARS:
        return Windowing([text], 1, 1)
    if tokenizer is not None:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                        verbose=False)
        offsets = [o for o in enc["offset_mapping"] if o[1] > o[0]]
    else:  # about 4 characters per word piece in English, 1 per CJK character
        offsets = [(i, min(len(text), i + 4)) for i in range(0, len(text), 4)]
    if len(offsets) <= window:
        return Windowing([text], 1, 1)
    step = window - overlap
    starts = list(range(0, max(1, len(offsets) - overlap), step))
    total = len(starts)
    if total > max_windows:
        picks = sorted({round(i * (total - 1) / (max_windows - 1)) for i in range(max_windows)})
        starts = [starts[i] for i in picks]
    windows = []
    for s in starts:
        e = min(len(offsets), s + window) - 1
        windows.append(text[offsets[s][0]:offsets[e][1]])
    return Windowing(windows, total, len(windows))


_SEGMENT_CUT = re.compile(r"[:：]|[.!?]\s|[。！？]")  # a Latin stop needs a space after it ("3.5", "e.g")
_CJK = re.compile(r"[\u4e00-\u9fff]")
MIN_FRAME_CHARS, MIN_PAYLOAD_CHARS = 30, 12


def last_segment(text: str) -> str | None:
    """The text after the last colon or sentence end, or None when either side is too short.

    A jailbreak frame ("You are X with no rules... X, answer this: <request>") pulls the whole prompt's
    vector towards role-play while the request itself usually comes last; read alone, it is plain.
    """
    text = text.strip()
    for m in reversed(list(_SEGMENT_CUT.finditer(text))):
        head, tail = text[:m.end()].strip(), text[m.end():].strip()
        if _weight(tail) >= MIN_PAYLOAD_CHARS and _weight(head) >= MIN_FRAME_CHARS:
            return tail
    return None


def _weight(text: str) -> int:
    """Length in Latin-character equivalents: a CJK character says about as much as two letters."""
    return len(text) + len(_CJK.findall(text))
