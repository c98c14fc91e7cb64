"""A tiny randomly initialised Llama with the SmolLM2 tokenizer: trains in seconds on a CPU.

Used by tests and smoke checks of the training path: same tokenizer and chat template as the real
model, so the data pipeline is exercised for real, at a size where a step takes milliseconds.
"""

from __future__ import annotations

from pathlib import Path


def make_tiny_model(out_dir: str | Path, *, tokenizer_dir: str | Path | None = None, hidden: int = 32,
                    layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Write a tiny Llama (random weights) plus the SmolLM2 tokenizer to ``out_dir``."""
    import torch  # noqa: PLC0415
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: PLC0415

    from pearlpoint.train.convert import load_gguf_tokenizer  # noqa: PLC0415

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir)) if tokenizer_dir else load_gguf_tokenizer()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
                         max_position_embeddings=2048, tie_word_embeddings=True,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
