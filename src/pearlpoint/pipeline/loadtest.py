"""A responder that only makes model calls: measures the batch machinery and an upstream, not CSA.

``CallsResponder(model, calls_per_row=k)`` sends ``k`` sequential chat calls per row through the
managed model (so concurrency limits, retries, accounting and the HTTP client are all real) and
writes a Record-shaped line whose answer is the upstream's last reply. Benchmarks use it to separate
the pipeline's overhead from Lingo-BP's CPU work; operators can use it to load-test an endpoint
fleet before a long run. Its records carry no judge scores, so ``pearl export`` drops them.
"""

from __future__ import annotations

from typing import Any

from pearlpoint.pipeline.inputs import PromptRow


class CallsResponder:
    def __init__(self, model: Any, *, calls_per_row: int = 4, max_tokens: int = 16) -> None:
        self.model = model
        self.calls_per_row = max(1, calls_per_row)
        self.max_tokens = max_tokens

    async def __call__(self, row: PromptRow) -> dict[str, Any]:
        from pearlpoint.llm import GenerationParams, Message, track_usage  # noqa: PLC0415

        text = row.query if isinstance(row.query, str) else row.query[-1]["content"]
        params = GenerationParams(max_tokens=self.max_tokens, temperature=0.7)  # not cached: real calls
        answer = ""
        with track_usage() as usage:
            for step in range(self.calls_per_row):
                result = await self.model.chat([Message(role="user", content=f"[{step}] {text}")], params=params)
                answer = result.text
        return {"id": row.id, "query": text, "lang": "en", "iterates": [
            {"step": 0, "mode": "seed", "chain": {}, "reasoning": "", "answer": answer,
             "satisfaction": None, "safety": None, "failed": False}],
            "chosen_index": 0, "usage": usage.snapshot(), "error": None,
            "generator": getattr(self.model, "name", "")}


def scripted_csa_reply(messages: list[dict[str, Any]]) -> str:
    """An upstream stand-in for dry runs of the full CSA loop (for ``MockServer(reply=...)``).

    Every answer is one JSON object that parses as each structured reply Lingo-BP asks for (judge
    verdicts, a backward proposal; unknown keys are ignored), so assess -> solve -> forward ->
    judge -> backward run for real without a model. The judges rate the answer as safe and helpful
    except for informativeness, which keeps the optimiser stepping until its round limit.
    """
    import json  # noqa: PLC0415

    satisfaction = {"user_profile": "a curious adult", "task": "get a useful answer", "empathy": 1,
                    "willingness": 1, "completion": 1, "coherence": 1, "informativeness": 0,
                    "suggestions": [{"item": "informativeness", "suggestion": "add one concrete example"}]}
    safety = {"verdict": "safe", "risk_intent": "ordinary curiosity", "adapted_guideline": "answer plainly",
              "next_turn": "a follow-up question", "suggestion": "keep it as it is"}
    step = sum(1 for m in messages if m.get("role") == "user")
    return json.dumps({
        "satisfaction": satisfaction, "safety": safety, **satisfaction, **safety,
        "diagnosis": "the answer lacks an example",
        "edits": [{"set": "usefulness", "op": "add", "new": f"give a concrete example {step}"}],
        "safety_guideline": "answer plainly", "risk_intent": "ordinary curiosity",
        "user_needs": "a clear, useful answer",
        "reasoning": "The user wants a clear answer.", "answer": "Here is a clear answer with an example.",
    })


class CallsFactory:
    """Builds a :class:`CallsResponder` inside a Ray actor (picklable: no closures over test code)."""

    def __init__(self, *, calls_per_row: int = 4, max_tokens: int = 16, model_name: str = "mock") -> None:
        self.calls_per_row = calls_per_row
        self.max_tokens = max_tokens
        self.model_name = model_name

    def __call__(self, settings: Any, endpoint: str | None) -> CallsResponder:
        from pearlpoint.llm import get_model  # noqa: PLC0415

        model = get_model("openai", settings=settings, base_url=endpoint, model_name=self.model_name, cache=False)
        return CallsResponder(model, calls_per_row=self.calls_per_row, max_tokens=self.max_tokens)
