"""Refuse JSON nested deeper than a limit before parsing it.

``json.loads`` recurses once per nesting level; a body of 5,000 ``[`` raised RecursionError, which the
proxy answered 500. A linear byte scan (brackets outside strings) finds the depth without building
anything, so the proxy can answer 400 naming the limit. The body size is already bounded
(``limits.max_body_bytes``) before this runs, so the scan's cost is bounded too.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(rb'[\[\]{}"\\]')


def json_depth_exceeds(raw: bytes, limit: int) -> int | None:
    """``limit + 1`` as soon as the nesting passes ``limit``, else None. Brackets inside strings
    (backslash escapes respected) do not count; malformed JSON is left for the parser to describe."""
    depth, in_str, skip = 0, False, -1  # skip: position of a byte escaped by a backslash
    for m in _TOKENS.finditer(raw):
        pos, ch = m.start(), m.group()
        if in_str:
            if pos == skip:
                continue
            if ch == b"\\":
                skip = pos + 1
            elif ch == b'"':
                in_str = False
            continue
        if ch == b'"':
            in_str = True
        elif ch in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return depth
        elif ch in (b"]", b"}"):
            depth = max(0, depth - 1)
    return None
