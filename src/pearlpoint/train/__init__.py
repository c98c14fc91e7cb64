"""Training on CSA data with TRL (SFT, ORPO, DPO; LoRA optional) and GGUF -> transformers conversion.

Heavy libraries (torch, transformers, trl) are imported only when a function runs.

    from pearlpoint.train import TrainOptions, train, convert_gguf
    base = convert_gguf().out_dir
    train(TrainOptions(method="sft", data="data/sft.jsonl", model=str(base), out="models/sft"))
"""

from pearlpoint.train.convert import ConversionResult, bundled_gguf, convert_gguf
from pearlpoint.train.trainer import TrainOptions, TrainResult, train

__all__ = ["ConversionResult", "TrainOptions", "TrainResult", "bundled_gguf", "convert_gguf", "train"]
