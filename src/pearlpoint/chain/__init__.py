"""The safety chain: typed structured reasoning, seeding, extraction, forward pass and steering.

    from pearlpoint.chain import SafetyChain, Strategies, seed_chain, steering_message
"""

from pearlpoint.chain.extract import ExtractedChain, extract_chain, extract_chain_sync
from pearlpoint.chain.forward import ForwardOutput, direct_answer, forward, scrub_meta
from pearlpoint.chain.schema import MAX_STRATEGIES_PER_SET, SafetyChain, Strategies
from pearlpoint.chain.seed import category_label, guideline_for, seed_chain
from pearlpoint.chain.steering import steering_message

__all__ = [
    "MAX_STRATEGIES_PER_SET", "ExtractedChain", "ForwardOutput", "SafetyChain", "Strategies", "category_label",
    "direct_answer", "extract_chain", "extract_chain_sync", "forward", "guideline_for", "scrub_meta",
    "seed_chain", "steering_message",
]
