"""A scripted responder for control-flow tests of the batch loop (never proof that CSA works)."""

from __future__ import annotations

import asyncio
from typing import Any

from pearlpoint.errors import BudgetExceeded, ModelError
from pearlpoint.pipeline.inputs import PromptRow


class ScriptedResponder:
    """Answers after ``delay_s``; raises for ids in ``fail_ids``; spends a call budget if given."""

    def __init__(self, delay_s: float = 0.0, fail_ids: set[str] | None = None, budget: int | None = None):
        self.delay_s = delay_s
        self.fail_ids = set(fail_ids or ())
        self.budget = budget
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, row: PromptRow) -> dict[str, Any]:
        if self.budget is not None and len(self.calls) >= self.budget:
            raise BudgetExceeded(f"call budget spent: {len(self.calls)} of {self.budget}")
        self.calls.append(row.id)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        if row.id in self.fail_ids:
            raise ModelError(f"upstream refused row {row.id}")
        text = row.query if isinstance(row.query, str) else row.query[-1]["content"]
        return {"id": "ignored", "query": text, "lang": "en", "iterates": [
            {"step": 0, "mode": "seed", "chain": {}, "reasoning": "r", "answer": "first " + text,
             "satisfaction": 0.0, "safety": 0.0},
            {"step": 1, "mode": "user", "chain": {}, "reasoning": "r", "answer": "better " + text,
             "satisfaction": 0.8, "safety": 1.0}],
            "chosen_index": 1, "usage": {"calls": 4, "prompt_tokens": 40, "completion_tokens": 10},
            "error": None}
