"""Choosing the Pearl Point reached: the best SAFE iterate by constructive score.

Among judged iterates that are fully safe, take the highest ``satisfaction - beta * risk`` (for a
safe one that is its satisfaction). If none is fully safe, the best constructive score overall (so a
partly safe reply beats an unsafe one). Ties go to the earliest iterate: fewer edits, same value.
"""

from __future__ import annotations

from pearlpoint.lingo.record import Iterate


def choose_best(iterates: list[Iterate], beta: float = 2.0) -> int | None:
    judged = [i for i, it in enumerate(iterates) if it.judged]
    if not judged:
        # Nothing could be judged: show the first reply that exists, if any.
        return next((i for i, it in enumerate(iterates) if it.answer and not it.skipped), None)
    safe = [i for i in judged if iterates[i].safety == 1.0]
    pool = safe or judged
    return max(pool, key=lambda i: (iterates[i].constructive(beta), -i))
