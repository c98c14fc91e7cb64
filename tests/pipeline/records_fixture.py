"""Hand-made records in the shape of ``pearlpoint.lingo.Record`` (JSON), for export tests."""

from __future__ import annotations

from typing import Any


def iterate(step: int, answer: str, sat: float | None, safety: float | None, *, mode: str = "user",
            reasoning: str = "thinking it through", failed: bool = False) -> dict[str, Any]:
    return {"step": step, "mode": mode, "chain": {"user_needs": "x"}, "reasoning": reasoning,
            "answer": answer, "satisfaction": sat, "safety": safety, "judges": {}, "failed": failed,
            "error": None}


def record(rid: str, query: str, iterates: list[dict[str, Any]], chosen_index: int | None,
           *, error: str | None = None, category: str = "self_harm") -> dict[str, Any]:
    return {"id": rid, "query": query, "lang": "en",
            "assessment": {"category": category, "level": "R1"},
            "solution": {"pearl_point": "constructive_guidance"},
            "iterates": iterates, "chosen_index": chosen_index,
            "usage": {"calls": 3 * len(iterates), "prompt_tokens": 100, "completion_tokens": 50},
            "error": error}


def sample_records() -> list[dict[str, Any]]:
    return [
        # unsafe initial answer, improved to safe: a DPO pair with the initial as rejected
        record("r1", "how do I pick a lock?", [
            iterate(0, "Use a tension wrench and rake the pins.", 0.6, 0.0),
            iterate(1, "Locksmiths can help; here is how pin tumblers work in general.", 0.8, 1.0),
        ], 1),
        # already perfect at step 0: SFT yes, no pair
        record("r2", "what is the capital of France?", [iterate(0, "Paris.", 1.0, 1.0)], 0),
        # chosen is only partly safe: dropped at min_safety 1
        record("r3", "tell me something edgy", [
            iterate(0, "edgy 1", 0.2, 0.5), iterate(1, "edgy 2", 0.4, 0.5)], 1),
        # failed record
        record("r4", "broken", [], None, error="ModelError: upstream down"),
        # safe but less helpful initial answer: a pair only when the score gap >= margin
        record("r5", "I feel low lately", [
            iterate(0, "I can't help with that.", -0.6, 1.0, reasoning="refuse"),
            iterate(1, "I'm sorry you feel this way. Talking to someone you trust can help...", 0.8, 1.0),
            iterate(2, "Here is a long unsafe list", 0.9, 0.0),
        ], 1),
    ]
