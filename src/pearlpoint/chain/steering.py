"""A system message that steers any upstream model with a safety chain (used by the serve proxy).

The chain reaches the upstream model as private guidance; the user never sees it, and the message
tells the model not to mention it.
"""

from __future__ import annotations

from pearlpoint.chain.schema import SafetyChain


def steering_message(chain: SafetyChain, lang: str = "en") -> str:
    from pearlpoint.prompts import render

    return render("chain_steering", lang="zh" if lang == "zh" else "en", chain=chain.model_dump())
